/*
 * loadgen.c - WebSocket load generator for hero-fast macro benchmarks.
 *
 * Single file, no external libraries: epoll, non-blocking sockets, one event
 * loop per thread.  Loopback only (127.0.0.1, ::1, localhost).
 *
 * Build:  make -C bench/macro        (cc -O2 -pthread)
 *
 * Usage:  loadgen MODE -P PORT [options]
 *   MODE      echo | action | fanout
 *   -H HOST   127.0.0.1 (default), ::1 or localhost
 *   -P PORT   server port (required)
 *   -u PATH   request path (default "/")
 *   -c N      connections (echo/action) or receivers (fanout)   [100]
 *   -p P      messages in flight per connection (echo 16, action 1);
 *             fanout: burst size (messages per burst)            [1]
 *   -s S      payload size in bytes (echo; fanout default body)  [64]
 *   -d SEC    measured duration in seconds (float)               [5]
 *   -w SEC    warmup in seconds (float)                          [1]
 *   -t T      threads (connections split across them)            [1]
 *   -n M      fanout: messages to send in the measured window    [unbounded]
 *   -m TEXT   fanout: message text sent by the sender; "{n}" is replaced
 *             by the message sequence number    [S bytes of 'x']
 *   -k MARK   fanout: receivers count only frames containing MARK
 *             [count every data frame]
 *   -J TEXT   send TEXT as one text frame on every connection right after
 *             the handshake (e.g. a roomAdd request)
 *   -W K      before measuring, wait until every connection received at
 *             least K data frames                                [0]
 *   -T SEC    timeout for setup (-W) and for one fanout burst    [10]
 *   -a NAME   action mode: action name                           [echo]
 *   -I        action mode: requests carry no messageId (the server assigns one);
 *             every frame with "context":"response" answers the oldest request
 *   -S PID    also report CPU use of process PID during the window
 *
 * Output: one JSON line on stdout.
 *   echo/action: {"mode":..,"conns":N,"inflight":P,"size":S,"seconds":..,
 *                 "messages":..,"msg_per_s":..,"errors":..,"threads":T,
 *                 "cpu_pct":..[,"server_cpu_pct":..,"server_sys_pct":..],
 *                 "sys_busy_pct":..[,"message_id":true|false]}
 *   cpu_pct: this process; server_cpu_pct: process -S (server_sys_pct: the
 *   part of it spent in the kernel); sys_busy_pct: whole machine (all cores);
 *   all in percent of one core over the measured window.
 *   fanout:      {"mode":"fanout","receivers":R,"burst":P,"size":..,
 *                 "sent":..(in the window),"sent_total":..(warmup too),"deliveries":..,"seconds":..,
 *                 "deliveries_per_s":..,"msg_per_s":(same),"errors":..,...}
 * Exit status: 0 ok, 1 usage/connection/setup error (no JSON line),
 *              3 connections failed or a burst timed out during the run
 *                (JSON line still printed).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_THREADS 64
#define MAX_FRAME (64u * 1024 * 1024)
#define RBUF_INIT (16 * 1024)
#define RBUF_ADAPT_MAX (256 * 1024)
#define MAX_EVENTS 512

enum { M_ECHO, M_ACTION, M_FANOUT };
enum { PH_SETUP, PH_RUN, PH_STOP };
enum { R_NORMAL, R_RECEIVER, R_SENDER };

/* ------------------------------------------------------------------ config */
static int o_mode = M_ECHO;
static const char *o_host = "127.0.0.1";
static int o_port = 0;
static const char *o_path = "/";
static int o_conns = 100;
static int o_inflight = -1;
static long o_size = 64;
static double o_dur = 5.0, o_warm = 1.0, o_timeout = 10.0;
static int o_threads = 1;
static long long o_count = -1;
static const char *o_msg = NULL;
static const char *o_marker = NULL;
static size_t o_marker_len = 0;
static const char *o_join = NULL;
static long o_waitk = 0;
static const char *o_action = "echo";
static int o_noid = 0;
static long o_spid = 0;

/* ----------------------------------------------------------------- structs */
struct thr;
typedef struct conn {
    int fd;
    int idx;
    int role;
    int inspect;           /* keep whole data frames to scan their payload */
    int dead;
    int want_out;          /* EPOLLOUT currently registered */
    struct thr *t;
    unsigned char *rbuf;
    size_t rlen, rcap, rneed;
    unsigned char *wbuf;
    size_t woff, wlen, wcap;
    uint64_t skip;         /* payload bytes of the current frame still to skip */
    int skip_counts;       /* current skipped frame completes a data message */
    long frames;           /* data messages received (for -W) */
    int ready;
    int to_send;           /* replies to queue after the current read */
    uint64_t next_id;      /* action mode */
    uint64_t *pend;
    int npend;
    unsigned char mask[4];
} conn;

typedef struct thr {
    int id;
    pthread_t th;
    int ep;
    int efd;               /* thread 0 in fanout mode: burst-complete wakeups */
    conn **conns;
    int nconns;
    int has_receivers;
    long counted;          /* thread-local, published to g_pub[id] */
    long errors;
} thr;

typedef struct { _Alignas(64) long v; } padded_long;
typedef struct { long long busy, total; int ok; } syssnap;
/* what -S PID reports about the server over the measured window */
typedef struct { long long ut, st; int ok; } srvsnap;

static padded_long g_pub[MAX_THREADS];     /* published counted messages */
static padded_long g_err[MAX_THREADS];     /* published errors */
static int g_phase = PH_SETUP;
static int g_ready = 0;                    /* conns that reached -W frames */
static int g_nthreads;
static thr g_thr[MAX_THREADS];
static conn *g_conns;
static int g_total;
static int g_err_printed = 0;

/* echo: one prebuilt masked frame */
static unsigned char *g_frame;
static size_t g_frame_len;

/* fanout state: owned by thread 0 except the atomics */
static long g_fan_target = 0;              /* atomic */
static int g_fan_waiting = 0;              /* atomic */
static int g_done = 0;                     /* atomic */
static conn *g_sender;
static struct {
    uint64_t t_start, t_burst, t_meas, t_end;
    long long sent, base_sent, end_sent;
    long base_sum, end_sum;
    int measuring, timed_out;
    struct rusage ru0, ru1;
    srvsnap srv0, srv1;
    syssnap sys0, sys1;
    int have_cpu;
} fs;
static unsigned char *g_fan_prebuilt;      /* when the template has no {n} */
static size_t g_fan_prebuilt_len;

/* ------------------------------------------------------------------ utils */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(1);
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = { (time_t)(ns / 1000000000ull), (long)(ns % 1000000000ull) };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

static void *xmalloc(size_t n) {
    void *p = malloc(n ? n : 1);
    if (!p) die("out of memory");
    return p;
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n);
    if (!p) die("out of memory");
    return p;
}

static void rnd(void *buf, size_t n) {
    unsigned char *p = buf;
    size_t got = 0;
    for (int tries = 0; got < n && tries < 100; tries++) {
        ssize_t r = getrandom(p + got, n - got, 0);
        if (r > 0) got += (size_t)r;
    }
    if (got < n) die("getrandom failed");
}

static double cpu_secs(const struct rusage *r) {
    return r->ru_utime.tv_sec + r->ru_utime.tv_usec / 1e6 +
           r->ru_stime.tv_sec + r->ru_stime.tv_usec / 1e6;
}

/* utime and stime of another process, in clock ticks; 0 if unavailable */
static int proc_cpu_ticks(long pid, long long *utime, long long *stime) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return 0;
    p += 2; /* skip ") " -> field 3 (state) */
    long long ut = -1, st = -1;
    for (int field = 3; field <= 15 && *p; field++) {
        if (field == 14) ut = strtoll(p, NULL, 10);
        if (field == 15) { st = strtoll(p, NULL, 10); break; }
        char *sp = strchr(p, ' ');
        if (!sp) break;
        p = sp + 1;
    }
    if (ut < 0 || st < 0) return 0;
    *utime = ut;
    *stime = st;
    return 1;
}

static void srv_snap(srvsnap *s) { s->ok = o_spid && proc_cpu_ticks(o_spid, &s->ut, &s->st); }

/* ,"server_cpu_pct":..,"server_sys_pct":.. */
static void print_srv(const srvsnap *a, const srvsnap *b, double secs) {
    if (a->ok && b->ok && secs > 0) {
        double tck = (double)sysconf(_SC_CLK_TCK);
        printf(",\"server_cpu_pct\":%.1f,\"server_sys_pct\":%.1f",
               100.0 * (double)(b->ut + b->st - a->ut - a->st) / tck / secs,
               100.0 * (double)(b->st - a->st) / tck / secs);
    }
}

/* whole-machine busy and total jiffies from /proc/stat (all CPUs) */
static int sys_cpu(long long *busy, long long *total) {
    char buf[512];
    int fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    if (strncmp(buf, "cpu ", 4) != 0) return -1;
    long long v[10] = {0}, t = 0;
    char *p = buf + 4;
    for (int i = 0; i < 10; i++) {
        char *e;
        v[i] = strtoll(p, &e, 10);
        if (e == p) break;
        p = e;
    }
    for (int i = 0; i < 8; i++) t += v[i];  /* guest time is already in user */
    *total = t;
    *busy = t - v[3] - v[4];                 /* minus idle and iowait */
    return 0;
}

static void sys_snap(syssnap *s) { s->ok = sys_cpu(&s->busy, &s->total) == 0; }
/* busy CPU over the interval in percent of one core (all cores summed) */
static double sys_busy_pct(const syssnap *a, const syssnap *b) {
    if (!a->ok || !b->ok || b->total <= a->total) return -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    return 100.0 * (double)ncpu * (double)(b->busy - a->busy) / (double)(b->total - a->total);
}

static long sum_pub(void) {
    long s = 0;
    for (int i = 0; i < g_nthreads; i++) s += __atomic_load_n(&g_pub[i].v, __ATOMIC_SEQ_CST);
    return s;
}

static long sum_err(void) {
    long s = 0;
    for (int i = 0; i < g_nthreads; i++) s += __atomic_load_n(&g_err[i].v, __ATOMIC_SEQ_CST);
    return s;
}

/* -------------------------------------------------------------- framing */
/* Write a masked client frame header + masked payload into out; returns length.
 * out must have room for len + 14. */
static size_t build_frame(unsigned char *out, int opcode, const void *payload, size_t len,
                          const unsigned char key[4]) {
    size_t h = 0;
    out[h++] = (unsigned char)(0x80 | opcode);
    if (len < 126) {
        out[h++] = (unsigned char)(0x80 | len);
    } else if (len < 65536) {
        out[h++] = 0x80 | 126;
        out[h++] = (unsigned char)(len >> 8);
        out[h++] = (unsigned char)len;
    } else {
        out[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) out[h++] = (unsigned char)((uint64_t)len >> (8 * i));
    }
    memcpy(out + h, key, 4);
    h += 4;
    const unsigned char *src = payload;
    for (size_t i = 0; i < len; i++) out[h + i] = src[i] ^ key[i & 3];
    return h + len;
}

/* ------------------------------------------------------------- write side */
static unsigned char *wreserve(conn *c, size_t n) {
    if (c->woff == c->wlen) c->woff = c->wlen = 0;
    if (c->wlen + n > c->wcap) {
        if (c->woff) {
            memmove(c->wbuf, c->wbuf + c->woff, c->wlen - c->woff);
            c->wlen -= c->woff;
            c->woff = 0;
        }
        if (c->wlen + n > c->wcap) {
            size_t nc = c->wcap ? c->wcap * 2 : 4096;
            while (nc < c->wlen + n) nc *= 2;
            c->wbuf = xrealloc(c->wbuf, nc);
            c->wcap = nc;
        }
    }
    return c->wbuf + c->wlen;
}

static void conn_fail(conn *c, const char *why, int err);

static void set_out(conn *c, int on) {
    if (c->want_out == on) return;
    struct epoll_event ev = { .events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c };
    if (epoll_ctl(c->t->ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->want_out = on;
}

/* One send() for everything pending; register EPOLLOUT on a short write. */
static void flush(conn *c) {
    if (c->dead || c->woff == c->wlen) return;
    size_t want = c->wlen - c->woff;
    ssize_t n;
    for (int tries = 0; tries < 4; tries++) {
        n = send(c->fd, c->wbuf + c->woff, want, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n >= 0 || errno != EINTR) break;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) { set_out(c, 1); return; }
        conn_fail(c, "send", errno);
        return;
    }
    c->woff += (size_t)n;
    if (c->woff == c->wlen) {
        c->woff = c->wlen = 0;
        set_out(c, 0);
    } else {
        set_out(c, 1);
    }
}

static void queue_action(conn *c) {
    char body[256];
    uint64_t id = ++c->next_id;
    int n = o_noid
        ? snprintf(body, sizeof body, "{\"event\":\"action\",\"params\":{\"action\":\"%s\",\"x\":1}}", o_action)
        : snprintf(body, sizeof body,
                   "{\"event\":\"action\",\"params\":{\"action\":\"%s\",\"x\":1},\"messageId\":%llu}",
                   o_action, (unsigned long long)id);
    if (n < 0 || n >= (int)sizeof body) n = (int)sizeof body - 1;
    unsigned char *w = wreserve(c, (size_t)n + 14);
    c->wlen += build_frame(w, 1, body, (size_t)n, c->mask);
    c->pend[c->npend++] = id;
}

static long action_size(void) { /* payload length of the message with id 1 */
    if (o_noid) return (long)snprintf(NULL, 0, "{\"event\":\"action\",\"params\":{\"action\":\"%s\",\"x\":1}}", o_action);
    return (long)snprintf(NULL, 0, "{\"event\":\"action\",\"params\":{\"action\":\"%s\",\"x\":1},\"messageId\":1}",
                          o_action);
}

static void queue_echo(conn *c, int count) {
    if (count <= 0) return;
    unsigned char *w = wreserve(c, g_frame_len * (size_t)count);
    for (int i = 0; i < count; i++) { memcpy(w, g_frame, g_frame_len); w += g_frame_len; }
    c->wlen += g_frame_len * (size_t)count;
}

static void queue_fan_msg(conn *c, long long seq) {
    if (g_fan_prebuilt) {
        unsigned char *w = wreserve(c, g_fan_prebuilt_len);
        memcpy(w, g_fan_prebuilt, g_fan_prebuilt_len);
        c->wlen += g_fan_prebuilt_len;
        return;
    }
    /* template with {n} */
    const char *ph = strstr(o_msg, "{n}");
    char num[32];
    int nl = snprintf(num, sizeof num, "%lld", seq);
    size_t pre = (size_t)(ph - o_msg), post = strlen(ph + 3);
    size_t len = pre + (size_t)nl + post;
    char stackbuf[4096];
    char *body = len <= sizeof stackbuf ? stackbuf : xmalloc(len);
    memcpy(body, o_msg, pre);
    memcpy(body + pre, num, (size_t)nl);
    memcpy(body + pre + nl, ph + 3, post);
    unsigned char *w = wreserve(c, len + 14);
    c->wlen += build_frame(w, 1, body, len, c->mask);
    if (body != stackbuf) free(body);
}

/* --------------------------------------------------------------- fan-out */
static void fan_send_burst(void) {
    conn *s = g_sender;
    int p = o_inflight;
    long target = (long)(fs.sent + p) * (long)o_conns;
    __atomic_store_n(&g_fan_target, target, __ATOMIC_SEQ_CST);
    __atomic_store_n(&g_fan_waiting, 1, __ATOMIC_SEQ_CST);
    fs.t_burst = now_ns();
    for (int i = 0; i < p; i++) queue_fan_msg(s, ++fs.sent);
    flush(s);
}

/* Called in thread 0 when the previous burst completed (or at start). */
static void fan_burst_done(void) {
    uint64_t now = now_ns();
    if (!fs.measuring) {
        if (now - fs.t_start >= (uint64_t)(o_warm * 1e9)) {
            fs.measuring = 1;
            fs.base_sum = sum_pub();
            fs.base_sent = fs.sent;
            fs.t_meas = now;
            getrusage(RUSAGE_SELF, &fs.ru0);
            sys_snap(&fs.sys0);
            srv_snap(&fs.srv0);
        }
    } else {
        long long sent = fs.sent - fs.base_sent;
        if ((o_count >= 0 && sent >= o_count) || now - fs.t_meas >= (uint64_t)(o_dur * 1e9)) {
            fs.end_sum = sum_pub();
            fs.end_sent = fs.sent;
            fs.t_end = now;
            getrusage(RUSAGE_SELF, &fs.ru1);
            sys_snap(&fs.sys1);
            srv_snap(&fs.srv1);
            fs.have_cpu = 1;
            __atomic_store_n(&g_done, 1, __ATOMIC_SEQ_CST);
            return;
        }
    }
    if (g_sender->dead) {
        fs.t_end = now;
        fs.end_sum = sum_pub();
        fs.end_sent = fs.sent;
        fs.timed_out = 1;
        __atomic_store_n(&g_done, 1, __ATOMIC_SEQ_CST);
        return;
    }
    fan_send_burst();
}

/* After a thread published new counts: is the current burst complete? */
static void fan_check(thr *t) {
    if (!__atomic_load_n(&g_fan_waiting, __ATOMIC_SEQ_CST)) return;
    if (sum_pub() < __atomic_load_n(&g_fan_target, __ATOMIC_SEQ_CST)) return;
    int expect = 1;
    if (!__atomic_compare_exchange_n(&g_fan_waiting, &expect, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
        return;
    if (t->id == 0) {
        fan_burst_done();
    } else {
        uint64_t one = 1;
        ssize_t r = write(g_thr[0].efd, &one, sizeof one);
        (void)r;
    }
}

/* ------------------------------------------------------------- read side */
static void conn_fail(conn *c, const char *why, int err) {
    if (c->dead) return;
    c->dead = 1;
    c->t->errors++;
    __atomic_store_n(&g_err[c->t->id].v, c->t->errors, __ATOMIC_SEQ_CST);
    if (__atomic_fetch_add(&g_err_printed, 1, __ATOMIC_RELAXED) < 5)
        fprintf(stderr, "loadgen: connection %d: %s%s%s\n", c->idx, why,
                err ? ": " : "", err ? strerror(err) : "");
    close(c->fd);   /* also removes it from epoll */
    c->fd = -1;
}

/* Does the JSON text hold "context": "response" (any whitespace around the colon)? */
static int is_response(const unsigned char *pl, size_t len) {
    static const char key[] = "\"context\"", val[] = "\"response\"";
    const unsigned char *p = pl, *end = pl + len;
    while (p < end) {
        const unsigned char *m = memmem(p, (size_t)(end - p), key, sizeof key - 1);
        if (!m) return 0;
        p = m + sizeof key - 1;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if (p == end || *p++ != ':') continue;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if ((size_t)(end - p) >= sizeof val - 1 && memcmp(p, val, sizeof val - 1) == 0) return 1;
    }
    return 0;
}

static inline void on_message(conn *c, const unsigned char *pl, size_t len, int running) {
    c->frames++;
    if (!c->ready && c->frames >= o_waitk) {
        c->ready = 1;
        __atomic_fetch_add(&g_ready, 1, __ATOMIC_SEQ_CST);
    }
    if (!running) return;
    switch (o_mode) {
    case M_ECHO:
        c->t->counted++;
        c->to_send++;
        break;
    case M_ACTION: {
        static const char key[] = "\"messageId\":";
        if (o_noid) {
            if (c->npend > 0 && is_response(pl, len)) {
                c->npend--;
                c->t->counted++;
                c->to_send++;
            }
            break;
        }
        const unsigned char *p = pl, *end = pl + len;
        while (p < end) {
            const unsigned char *m = memmem(p, (size_t)(end - p), key, sizeof key - 1);
            if (!m) break;
            p = m + sizeof key - 1;
            while (p < end && (*p == ' ' || *p == '\t')) p++;
            uint64_t id = 0;
            int digits = 0;
            while (p < end && *p >= '0' && *p <= '9' && digits < 20) { id = id * 10 + (uint64_t)(*p - '0'); p++; digits++; }
            if (!digits) continue;
            for (int i = 0; i < c->npend; i++) {
                if (c->pend[i] == id) {
                    c->pend[i] = c->pend[--c->npend];
                    c->t->counted++;
                    c->to_send++;
                    return;
                }
            }
        }
        break;
    }
    case M_FANOUT:
        if (c->role == R_RECEIVER &&
            (!o_marker || memmem(pl, len, o_marker, o_marker_len) != NULL))
            c->t->counted++;
        break;
    }
}

/* Parse all complete frames in rbuf. Returns 0 ok, -1 protocol error, -2 close. */
static int parse(conn *c, int running) {
    unsigned char *p = c->rbuf;
    size_t len = c->rlen, pos = 0;
    c->rneed = 0;
    for (;;) {
        if (c->skip) {
            size_t avail = len - pos;
            size_t k = avail < c->skip ? avail : (size_t)c->skip;
            pos += k;
            c->skip -= k;
            if (c->skip) break;
            if (c->skip_counts) on_message(c, NULL, 0, running);
            continue;
        }
        size_t have = len - pos;
        if (have < 2) break;
        unsigned b0 = p[pos], b1 = p[pos + 1];
        int fin = b0 & 0x80, op = b0 & 0x0f, masked = b1 & 0x80;
        uint64_t plen = b1 & 0x7f;
        size_t hl = 2;
        if (plen == 126) {
            if (have < 4) break;
            plen = ((uint64_t)p[pos + 2] << 8) | p[pos + 3];
            hl = 4;
        } else if (plen == 127) {
            if (have < 10) break;
            plen = 0;
            for (int i = 0; i < 8; i++) plen = (plen << 8) | p[pos + 2 + i];
            hl = 10;
        }
        if (masked) hl += 4;
        if (have < hl) break;
        if (plen > MAX_FRAME) return -1;
        int ctrl = op & 8;
        if (ctrl && (plen > 125 || !fin)) return -1;
        if (!ctrl && op > 2) return -1;
        if (!ctrl && !c->inspect) {
            pos += hl;
            c->skip = plen;
            c->skip_counts = fin ? 1 : 0;
            if (plen == 0 && fin) on_message(c, NULL, 0, running);
            continue;
        }
        if (have < hl + plen) { c->rneed = hl + (size_t)plen; break; }
        unsigned char *pl = p + pos + hl;
        if (masked) {
            unsigned char *k = pl - 4;
            for (size_t i = 0; i < plen; i++) pl[i] ^= k[i & 3];
        }
        if (ctrl) {
            if (op == 8) return -2;
            if (op == 9) { /* ping -> pong */
                unsigned char *w = wreserve(c, (size_t)plen + 14);
                c->wlen += build_frame(w, 0xA, pl, (size_t)plen, c->mask);
            }
        } else if (fin) {
            on_message(c, pl, (size_t)plen, running);
        }
        pos += hl + (size_t)plen;
    }
    if (pos) {
        memmove(p, p + pos, len - pos);
        c->rlen = len - pos;
    }
    if (c->rneed > c->rcap) {
        c->rbuf = xrealloc(c->rbuf, c->rneed);
        c->rcap = c->rneed;
    }
    return 0;
}

static void after_read(conn *c) {
    int n = c->to_send;
    c->to_send = 0;
    if (n > 0) {
        if (o_mode == M_ECHO) queue_echo(c, n);
        else if (o_mode == M_ACTION) for (int i = 0; i < n; i++) queue_action(c);
    }
    flush(c);
}

static void on_readable(conn *c, int running) {
    if (c->rlen == c->rcap) {
        c->rcap *= 2;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
    size_t space = c->rcap - c->rlen;
    ssize_t n = recv(c->fd, c->rbuf + c->rlen, space, MSG_DONTWAIT);
    if (n == 0) { conn_fail(c, "server closed the connection", 0); return; }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        conn_fail(c, "recv", errno);
        return;
    }
    c->rlen += (size_t)n;
    int r = parse(c, running);
    if (r == -1) { conn_fail(c, "protocol error in server frame", 0); return; }
    if (r == -2) { conn_fail(c, "server sent a close frame", 0); return; }
    after_read(c);
    /* adapt: a read that filled the buffer means more was waiting */
    if ((size_t)n == space && c->rcap < RBUF_ADAPT_MAX && !c->dead) {
        c->rcap *= 2;
        c->rbuf = xrealloc(c->rbuf, c->rcap);
    }
}

static void start_conn(conn *c) {
    if (c->dead) return;
    if (o_mode == M_ECHO) queue_echo(c, o_inflight);
    else if (o_mode == M_ACTION) for (int i = 0; i < o_inflight; i++) queue_action(c);
    flush(c);
}

static void *thread_main(void *arg) {
    thr *t = arg;
    struct epoll_event evs[MAX_EVENTS];
    int running = 0;
    uint64_t loops = 0;
    /* frames that arrived together with the handshake response */
    for (int i = 0; i < t->nconns; i++) {
        conn *c = t->conns[i];
        if (c->dead || c->rlen == 0) continue;
        int r = parse(c, 0);
        if (r == -1) { conn_fail(c, "protocol error in server frame", 0); continue; }
        if (r == -2) { conn_fail(c, "server sent a close frame", 0); continue; }
        after_read(c);
    }
    for (;;) {
        loops++;
        int n = epoll_wait(t->ep, evs, MAX_EVENTS, 20);
        int ph = __atomic_load_n(&g_phase, __ATOMIC_SEQ_CST);
        if (ph == PH_STOP) break;
        if (ph == PH_RUN && !running) {
            running = 1;
            if (o_mode == M_FANOUT) {
                if (t->id == 0) { fs.t_start = now_ns(); fan_burst_done(); }
            } else {
                for (int i = 0; i < t->nconns; i++) start_conn(t->conns[i]);
            }
        }
        long before = t->counted;
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) { /* eventfd: a burst completed in another thread */
                uint64_t v;
                ssize_t r = read(t->efd, &v, sizeof v);
                (void)r;
                if (running) fan_burst_done();
                continue;
            }
            if (c->dead) continue;
            uint32_t e = evs[i].events;
            if (e & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, running);
            if (!c->dead && (e & EPOLLOUT)) flush(c);
        }
        if (t->counted != before) {
            __atomic_store_n(&g_pub[t->id].v, t->counted, __ATOMIC_SEQ_CST);
            if (o_mode == M_FANOUT) fan_check(t);
        }
        if (o_mode == M_FANOUT && t->id == 0 && running &&
            __atomic_load_n(&g_fan_waiting, __ATOMIC_SEQ_CST) &&
            now_ns() - fs.t_burst > (uint64_t)(o_timeout * 1e9)) {
            int expect = 1;
            if (__atomic_compare_exchange_n(&g_fan_waiting, &expect, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) {
                long got = sum_pub(), want = __atomic_load_n(&g_fan_target, __ATOMIC_SEQ_CST);
                fprintf(stderr, "loadgen: fanout burst timed out after %.1fs: %ld of %ld deliveries\n",
                        o_timeout, got, want);
                fs.timed_out = 1;
                fs.t_end = now_ns();
                fs.end_sum = got;
                fs.end_sent = fs.sent;
                if (fs.measuring) { getrusage(RUSAGE_SELF, &fs.ru1); sys_snap(&fs.sys1); srv_snap(&fs.srv1); fs.have_cpu = 1; }
                __atomic_store_n(&g_done, 1, __ATOMIC_SEQ_CST);
            }
        }
    }
    (void)loops;
    return NULL;
}

/* ------------------------------------------------------------- handshake */
static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static void b64enc(const unsigned char *in, size_t n, char *out) {
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = b64[(v >> 18) & 63];
        out[o++] = b64[(v >> 12) & 63];
        out[o++] = i + 1 < n ? b64[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? b64[v & 63] : '=';
    }
    out[o] = 0;
}

static struct sockaddr_storage g_sa;
static socklen_t g_salen;

static void resolve(void) {
    memset(&g_sa, 0, sizeof g_sa);
    const char *h = o_host;
    if (strcmp(h, "localhost") == 0) h = "127.0.0.1";
    struct sockaddr_in *a4 = (struct sockaddr_in *)&g_sa;
    struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&g_sa;
    if (inet_pton(AF_INET, h, &a4->sin_addr) == 1) {
        if (strcmp(h, "127.0.0.1") != 0) die("refusing non-loopback host %s (use 127.0.0.1 or ::1)", o_host);
        a4->sin_family = AF_INET;
        a4->sin_port = htons((uint16_t)o_port);
        g_salen = sizeof *a4;
    } else if (inet_pton(AF_INET6, h, &a6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&a6->sin6_addr)) die("refusing non-loopback host %s (use 127.0.0.1 or ::1)", o_host);
        a6->sin6_family = AF_INET6;
        a6->sin6_port = htons((uint16_t)o_port);
        g_salen = sizeof *a6;
    } else {
        die("host must be 127.0.0.1, ::1 or localhost, got %s", o_host);
    }
}

static void send_all_blocking(int fd, const void *buf, size_t len, int idx) {
    const char *p = buf;
    for (int tries = 0; len && tries < 1000; tries++) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("connection %d: send during setup: %s", idx, strerror(errno));
        }
        p += n;
        len -= (size_t)n;
    }
    if (len) die("connection %d: could not send setup data", idx);
}

static void connect_conn(conn *c) {
    int fd = socket(g_sa.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket: %s (connection %d; raise ulimit -n?)", strerror(errno), c->idx);
    struct timeval tv = { 5, 0 };
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&g_sa, g_salen) != 0)
        die("connect to %s:%d failed (connection %d): %s", o_host, o_port, c->idx, strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);

    unsigned char key[16];
    char k64[32], req[2048], hostbuf[80];
    rnd(key, sizeof key);
    b64enc(key, sizeof key, k64);
    if (g_sa.ss_family == AF_INET6) snprintf(hostbuf, sizeof hostbuf, "[::1]:%d", o_port);
    else snprintf(hostbuf, sizeof hostbuf, "127.0.0.1:%d", o_port);
    int rl = snprintf(req, sizeof req,
                      "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n",
                      o_path, hostbuf, k64);
    if (rl <= 0 || rl >= (int)sizeof req) die("request path too long");
    send_all_blocking(fd, req, (size_t)rl, c->idx);

    char resp[8192];
    size_t got = 0;
    char *end = NULL;
    for (int tries = 0; tries < 1000 && !end; tries++) {
        if (got >= sizeof resp - 1) die("connection %d: handshake response too large", c->idx);
        ssize_t n = recv(fd, resp + got, sizeof resp - 1 - got, 0);
        if (n == 0) die("connection %d: server closed during handshake", c->idx);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("connection %d: handshake read: %s", c->idx,
                errno == EAGAIN ? "timed out after 5s" : strerror(errno));
        }
        got += (size_t)n;
        resp[got] = 0;
        end = memmem(resp, got, "\r\n\r\n", 4);
    }
    if (!end) die("connection %d: no complete handshake response", c->idx);
    if (!(got >= 12 && memcmp(resp, "HTTP/1.", 7) == 0 && memcmp(resp + 8, " 101", 4) == 0)) {
        char *eol = strstr(resp, "\r\n");
        if (eol) *eol = 0;
        die("connection %d: handshake rejected: %s", c->idx, resp);
    }
    size_t hdr = (size_t)(end - resp) + 4;
    c->rcap = RBUF_INIT;
    if (o_mode == M_ECHO && (size_t)o_size + 14 > c->rcap / 2)
        while (c->rcap < 4 * ((size_t)o_size + 14) && c->rcap < RBUF_ADAPT_MAX) c->rcap *= 2;
    c->rbuf = xmalloc(c->rcap);
    c->rlen = got - hdr;
    if (c->rlen > c->rcap) { c->rcap = c->rlen * 2; c->rbuf = xrealloc(c->rbuf, c->rcap); }
    memcpy(c->rbuf, resp + hdr, c->rlen);

    rnd(c->mask, 4);
    if (o_join) {
        size_t jl = strlen(o_join);
        unsigned char *f = xmalloc(jl + 14);
        size_t fl = build_frame(f, 1, o_join, jl, c->mask);
        send_all_blocking(fd, f, fl, c->idx);
        free(f);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl: %s", strerror(errno));
    c->fd = fd;
}

/* ------------------------------------------------------------------ main */
static void usage(void) {
    fprintf(stderr,
            "usage: loadgen echo|action|fanout -P PORT [-H 127.0.0.1|::1] [-u PATH]\n"
            "       [-c CONNS] [-p INFLIGHT|BURST] [-s SIZE] [-d SEC] [-w SEC] [-t THREADS]\n"
            "       [-n MESSAGES] [-m TEXT] [-k MARKER] [-J TEXT] [-W K] [-T SEC] [-a ACTION] [-I] [-S PID]\n"
            "(see the comment at the top of loadgen.c)\n");
    exit(1);
}

static long parse_long(const char *s, const char *what, long lo, long hi) {
    char *e;
    errno = 0;
    long v = strtol(s, &e, 10);
    if (errno || *e || e == s || v < lo || v > hi) die("bad %s: %s", what, s);
    return v;
}

static double parse_dbl(const char *s, const char *what, double lo, double hi) {
    char *e;
    double v = strtod(s, &e);
    if (*e || e == s || !(v >= lo && v <= hi)) die("bad %s: %s", what, s);
    return v;
}

int main(int argc, char **argv) {
    const char *mode = NULL;
    int opt;
    while ((opt = getopt(argc, argv, "-H:P:u:c:p:s:d:w:t:n:m:k:J:W:T:a:IS:h")) != -1) {
        switch (opt) {
        case 1: if (mode) usage(); mode = optarg; break;
        case 'H': o_host = optarg; break;
        case 'P': o_port = (int)parse_long(optarg, "port", 1, 65535); break;
        case 'u': o_path = optarg; break;
        case 'c': o_conns = (int)parse_long(optarg, "connections", 1, 1000000); break;
        case 'p': o_inflight = (int)parse_long(optarg, "in-flight", 1, 100000); break;
        case 's': o_size = parse_long(optarg, "size", 0, MAX_FRAME); break;
        case 'd': o_dur = parse_dbl(optarg, "duration", 0.01, 86400); break;
        case 'w': o_warm = parse_dbl(optarg, "warmup", 0, 86400); break;
        case 't': o_threads = (int)parse_long(optarg, "threads", 1, MAX_THREADS); break;
        case 'n': o_count = parse_long(optarg, "count", 1, 1L << 62); break;
        case 'm': o_msg = optarg; break;
        case 'k': o_marker = optarg; o_marker_len = strlen(optarg); if (!o_marker_len) o_marker = NULL; break;
        case 'J': o_join = optarg; break;
        case 'W': o_waitk = parse_long(optarg, "wait frames", 0, 1L << 30); break;
        case 'T': o_timeout = parse_dbl(optarg, "timeout", 0.01, 86400); break;
        case 'a': o_action = optarg; break;
        case 'I': o_noid = 1; break;
        case 'S': o_spid = parse_long(optarg, "pid", 1, 1L << 30); break;
        default: usage();
        }
    }
    if (!mode || !o_port) usage();
    if (strcmp(mode, "echo") == 0) o_mode = M_ECHO;
    else if (strcmp(mode, "action") == 0) o_mode = M_ACTION;
    else if (strcmp(mode, "fanout") == 0) o_mode = M_FANOUT;
    else usage();
    if (o_inflight < 0) o_inflight = o_mode == M_ECHO ? 16 : 1;
    if (o_path[0] != '/' || strpbrk(o_path, " \r\n")) die("path must start with / and contain no spaces");
    if (strlen(o_action) > 100 || strpbrk(o_action, "\"\\")) die("bad action name");
    resolve();

    signal(SIGPIPE, SIG_IGN);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    /* payloads */
    unsigned char gkey[4];
    rnd(gkey, 4);
    if (o_mode == M_ECHO) {
        unsigned char *pl = xmalloc((size_t)o_size);
        memset(pl, 'x', (size_t)o_size);
        g_frame = xmalloc((size_t)o_size + 14);
        g_frame_len = build_frame(g_frame, 1, pl, (size_t)o_size, gkey);
        free(pl);
    }
    size_t fan_size = 0;
    if (o_mode == M_FANOUT) {
        if (!o_msg) {
            char *pl = xmalloc((size_t)o_size + 1);
            memset(pl, 'x', (size_t)o_size);
            pl[o_size] = 0;
            o_msg = pl;
        }
        fan_size = strlen(o_msg);
        if (!strstr(o_msg, "{n}")) {
            g_fan_prebuilt = xmalloc(fan_size + 14);
            g_fan_prebuilt_len = build_frame(g_fan_prebuilt, 1, o_msg, fan_size, gkey);
        }
    }

    g_nthreads = o_threads;
    g_total = o_mode == M_FANOUT ? o_conns + 1 : o_conns;
    if (g_nthreads > g_total) g_nthreads = g_total;
    g_conns = calloc((size_t)g_total, sizeof(conn));
    if (!g_conns) die("out of memory");
    for (int i = 0; i < g_nthreads; i++) {
        thr *t = &g_thr[i];
        t->id = i;
        t->efd = -1;
        t->ep = epoll_create1(EPOLL_CLOEXEC);
        if (t->ep < 0) die("epoll_create1: %s", strerror(errno));
        t->conns = xmalloc(sizeof(conn *) * (size_t)(g_total / g_nthreads + 2));
    }

    /* connect + handshake, sequentially */
    for (int i = 0; i < g_total; i++) {
        conn *c = &g_conns[i];
        c->idx = i;
        c->fd = -1;
        if (o_mode == M_FANOUT) {
            c->role = i == o_conns ? R_SENDER : R_RECEIVER;
            c->inspect = c->role == R_RECEIVER && o_marker != NULL;
        } else {
            c->role = R_NORMAL;
            c->inspect = o_mode == M_ACTION;
        }
        if (o_mode == M_ACTION) c->pend = xmalloc(sizeof(uint64_t) * (size_t)o_inflight);
        thr *t = c->role == R_SENDER ? &g_thr[0] : &g_thr[i % g_nthreads];
        c->t = t;
        if (c->role == R_RECEIVER) t->has_receivers = 1;
        t->conns[t->nconns++] = c;
        connect_conn(c);
        if (o_waitk == 0) { c->ready = 1; g_ready++; }
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
        if (epoll_ctl(t->ep, EPOLL_CTL_ADD, c->fd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
    }
    if (o_mode == M_FANOUT) {
        g_sender = &g_conns[o_conns];
        g_thr[0].efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        if (g_thr[0].efd < 0) die("eventfd: %s", strerror(errno));
        struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
        if (epoll_ctl(g_thr[0].ep, EPOLL_CTL_ADD, g_thr[0].efd, &ev) != 0) die("epoll_ctl: %s", strerror(errno));
    }

    /* setup phase: threads read (and count frames for -W) but do not send */
    for (int i = 0; i < g_nthreads; i++)
        if (pthread_create(&g_thr[i].th, NULL, thread_main, &g_thr[i]) != 0) die("pthread_create failed");

    int exit_code = 0;
    uint64_t t0 = now_ns();
    while (__atomic_load_n(&g_ready, __ATOMIC_SEQ_CST) < g_total) {
        if (sum_err() > 0 || now_ns() - t0 > (uint64_t)(o_timeout * 1e9)) {
            int ready = __atomic_load_n(&g_ready, __ATOMIC_SEQ_CST);
            __atomic_store_n(&g_phase, PH_STOP, __ATOMIC_SEQ_CST);
            for (int i = 0; i < g_nthreads; i++) pthread_join(g_thr[i].th, NULL);
            die("setup failed: %d of %d connections received %ld frame(s)%s", ready, g_total, o_waitk,
                sum_err() ? " (connection errors)" : " before the timeout");
        }
        sleep_ns(1000000);
    }
    long setup_errors = sum_err();

    __atomic_store_n(&g_phase, PH_RUN, __ATOMIC_SEQ_CST);

    if (o_mode == M_FANOUT) {
        uint64_t deadline = now_ns() + (uint64_t)((o_warm + o_dur + o_timeout + 5.0) * 1e9);
        while (!__atomic_load_n(&g_done, __ATOMIC_SEQ_CST) && now_ns() < deadline) sleep_ns(2000000);
        int done = __atomic_load_n(&g_done, __ATOMIC_SEQ_CST);
        __atomic_store_n(&g_phase, PH_STOP, __ATOMIC_SEQ_CST);
        for (int i = 0; i < g_nthreads; i++) pthread_join(g_thr[i].th, NULL);
        if (!done) die("fanout did not finish before its deadline");
        if (!fs.measuring) { /* stopped during warmup */
            fs.t_meas = fs.t_start;
            fs.base_sum = 0;
            fs.base_sent = 0;
        }
        double secs = (double)(fs.t_end - fs.t_meas) / 1e9;
        long deliv = fs.end_sum - fs.base_sum;
        long errors = sum_err() + setup_errors;
        double dps = secs > 0 ? deliv / secs : 0;
        printf("{\"mode\":\"fanout\",\"receivers\":%d,\"burst\":%d,\"size\":%zu,\"sent\":%lld,\"sent_total\":%lld,"
               "\"deliveries\":%ld,\"seconds\":%.3f,\"deliveries_per_s\":%.0f,\"msg_per_s\":%.0f,"
               "\"errors\":%ld,\"timed_out\":%s,\"threads\":%d",
               o_conns, o_inflight, fan_size, fs.end_sent - fs.base_sent, fs.sent, deliv, secs, dps, dps,
               errors, fs.timed_out ? "true" : "false", g_nthreads);
        if (fs.have_cpu && secs > 0) {
            printf(",\"cpu_pct\":%.1f", 100.0 * (cpu_secs(&fs.ru1) - cpu_secs(&fs.ru0)) / secs);
            double sb = sys_busy_pct(&fs.sys0, &fs.sys1);
            if (sb >= 0) printf(",\"sys_busy_pct\":%.1f", sb);
            print_srv(&fs.srv0, &fs.srv1, secs);
        }
        printf("}\n");
        fflush(stdout);
        if (errors || fs.timed_out) exit_code = 3;
        return exit_code;
    }

    /* echo / action: main thread times the window and samples the counters */
    uint64_t step = 50000000ull; /* 50 ms */
    uint64_t wend = now_ns() + (uint64_t)(o_warm * 1e9);
    for (uint64_t now; (now = now_ns()) < wend;) {
        if (sum_err() >= g_total) break;
        sleep_ns(wend - now < step ? wend - now : step);
    }
    struct rusage ru0, ru1;
    srvsnap srv0, srv1;
    srv_snap(&srv0);
    syssnap ss0, ss1;
    sys_snap(&ss0);
    getrusage(RUSAGE_SELF, &ru0);
    uint64_t m0 = now_ns();
    long c0 = sum_pub();
    uint64_t mend = m0 + (uint64_t)(o_dur * 1e9);
    for (uint64_t now; (now = now_ns()) < mend;) {
        if (sum_err() >= g_total) break;
        sleep_ns(mend - now < step ? mend - now : step);
    }
    long c1 = sum_pub();
    uint64_t m1 = now_ns();
    getrusage(RUSAGE_SELF, &ru1);
    sys_snap(&ss1);
    srv_snap(&srv1);
    __atomic_store_n(&g_phase, PH_STOP, __ATOMIC_SEQ_CST);
    for (int i = 0; i < g_nthreads; i++) pthread_join(g_thr[i].th, NULL);

    double secs = (double)(m1 - m0) / 1e9;
    long msgs = c1 - c0;
    long errors = sum_err();
    printf("{\"mode\":\"%s\",\"conns\":%d,\"inflight\":%d,\"size\":%ld,\"seconds\":%.3f,"
           "\"messages\":%ld,\"msg_per_s\":%.0f,\"errors\":%ld,\"threads\":%d,\"cpu_pct\":%.1f",
           o_mode == M_ECHO ? "echo" : "action", o_conns, o_inflight,
           o_mode == M_ECHO ? o_size : action_size(), secs, msgs, secs > 0 ? msgs / secs : 0.0, errors,
           g_nthreads, secs > 0 ? 100.0 * (cpu_secs(&ru1) - cpu_secs(&ru0)) / secs : 0.0);
    print_srv(&srv0, &srv1, secs);
    if (o_mode == M_ACTION) printf(",\"message_id\":%s", o_noid ? "false" : "true");
    double sb = sys_busy_pct(&ss0, &ss1);
    if (sb >= 0) printf(",\"sys_busy_pct\":%.1f", sb);
    printf("}\n");
    fflush(stdout);
    return errors ? 3 : 0;
}
