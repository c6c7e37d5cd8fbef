/*
 * epoll_server.c - the C "limit" rows of the bench suite: a minimal WebSocket server on one
 * epoll loop, doing what the performance notes (shared/notes/performance.md) call the floor
 * for any server on this machine.
 *
 *   epoll_server echo -P PORT
 *       every data frame goes back to its sender, unmasked and re-framed; all frames one
 *       read produced leave in ONE write (one read and one write per read batch).
 *   epoll_server broadcast -P PORT
 *       every text/binary frame any connection sends goes to every open connection (the
 *       sender included). Each message is framed once into the loop iteration's batch; after
 *       the iteration every connection gets the whole batch (what it has pending) in ONE
 *       write; a connection whose socket is full keeps a backlog, flushed on EPOLLOUT.
 *
 * RFC 6455 as far as the bench needs it: the opening handshake, masked client frames (an
 * unmasked one closes the connection), ping -> pong, close -> close reply, fragments passed
 * through frame by frame. Frames up to 64 MiB. Loopback only (127.0.0.1).
 * No libraries: SHA-1 and base64 for the handshake are below.
 *
 * Build: make -C bench/macro epoll_server       (cc -O2)
 * Usage: epoll_server echo|broadcast -P PORT
 * Prints "epoll_server MODE listening on 127.0.0.1:PORT" once listening; SIGTERM/SIGINT stop
 * it, printing its read/write/message counters on stderr.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FRAME (64u * 1024 * 1024)
#define MAX_HEADER 8192
#define RBUF_INIT (64 * 1024)
#define MAX_BACKLOG (256u * 1024 * 1024) /* a receiver this far behind is dropped */
#define MAX_EVENTS 512

enum { ST_HANDSHAKE, ST_OPEN, ST_CLOSING };

typedef struct { unsigned char *p; size_t off, len, cap; } buf;

typedef struct conn {
    int fd;
    int state;
    int want_out;
    int live_idx;           /* index in g_live (open connections), -1 if not there */
    buf in;
    buf out;                /* bytes the socket did not take yet */
} conn;

static int g_broadcast;
static int g_ep;
static volatile sig_atomic_t g_stop;
static conn **g_by_fd;
static int g_max_fd;
static conn **g_live;
static int g_nlive;
static buf g_batch;         /* broadcast: frames of the current loop iteration */
static unsigned long long n_reads, n_writes, n_msgs_in;

static void die(const char *what) {
    fprintf(stderr, "epoll_server: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void buf_reserve(buf *b, size_t n) {
    if (b->off == b->len) b->off = b->len = 0;
    if (b->len + n <= b->cap) return;
    if (b->off) {
        memmove(b->p, b->p + b->off, b->len - b->off);
        b->len -= b->off;
        b->off = 0;
        if (b->len + n <= b->cap) return;
    }
    size_t nc = b->cap ? b->cap : 4096;
    while (nc < b->len + n) nc *= 2;
    unsigned char *p = realloc(b->p, nc);
    if (!p) { fprintf(stderr, "epoll_server: out of memory\n"); exit(1); }
    b->p = p;
    b->cap = nc;
}

static void buf_append(buf *b, const void *data, size_t n) {
    buf_reserve(b, n);
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* ------------------------------------------------------------------ SHA-1 + base64 */
static uint32_t rol(uint32_t v, int s) { return (v << s) | (v >> (32 - s)); }

static void sha1(const unsigned char *msg, size_t len, unsigned char out[20]) {
    uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
    size_t total = ((len + 8) / 64 + 1) * 64;
    unsigned char *m = calloc(total, 1);
    if (!m) { fprintf(stderr, "epoll_server: out of memory\n"); exit(1); }
    memcpy(m, msg, len);
    m[len] = 0x80;
    uint64_t bits = (uint64_t)len * 8;
    for (int i = 0; i < 8; i++) m[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    for (size_t blk = 0; blk < total; blk += 64) {
        uint32_t w[80];
        for (int i = 0; i < 16; i++)
            w[i] = (uint32_t)m[blk + 4 * i] << 24 | (uint32_t)m[blk + 4 * i + 1] << 16 |
                   (uint32_t)m[blk + 4 * i + 2] << 8 | m[blk + 4 * i + 3];
        for (int i = 16; i < 80; i++) w[i] = rol(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
        uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
        for (int i = 0; i < 80; i++) {
            uint32_t f, k;
            if (i < 20) { f = (b & c) | (~b & d); k = 0x5A827999; }
            else if (i < 40) { f = b ^ c ^ d; k = 0x6ED9EBA1; }
            else if (i < 60) { f = (b & c) | (b & d) | (c & d); k = 0x8F1BBCDC; }
            else { f = b ^ c ^ d; k = 0xCA62C1D6; }
            uint32_t t = rol(a, 5) + f + e + k + w[i];
            e = d; d = c; c = rol(b, 30); b = a; a = t;
        }
        h[0] += a; h[1] += b; h[2] += c; h[3] += d; h[4] += e;
    }
    free(m);
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 4; j++) out[4 * i + j] = (unsigned char)(h[i] >> (24 - 8 * j));
}

static void base64(const unsigned char *in, size_t n, char *out) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < n) v |= (uint32_t)in[i + 1] << 8;
        if (i + 2 < n) v |= in[i + 2];
        out[o++] = tab[(v >> 18) & 63];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
        out[o++] = i + 2 < n ? tab[v & 63] : '=';
    }
    out[o] = 0;
}

/* ------------------------------------------------------------------ connections */
static void set_out(conn *c, int on) {
    if (c->want_out == on) return;
    struct epoll_event ev = {.events = EPOLLIN | (on ? EPOLLOUT : 0), .data.ptr = c};
    if (epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev) == 0) c->want_out = on;
}

static void live_remove(conn *c) {
    if (c->live_idx < 0) return;
    conn *last = g_live[--g_nlive];
    g_live[c->live_idx] = last;
    last->live_idx = c->live_idx;
    c->live_idx = -1;
}

static void conn_free(conn *c) {
    live_remove(c);
    g_by_fd[c->fd] = NULL;
    close(c->fd); /* also leaves the epoll set */
    free(c->in.p);
    free(c->out.p);
    free(c);
}

/* One write of everything pending; a short write waits for EPOLLOUT. 0 ok, -1 conn freed. */
static int flush(conn *c) {
    if (c->out.off == c->out.len) {
        set_out(c, 0);
        if (c->state == ST_CLOSING) { conn_free(c); return -1; }
        return 0;
    }
    ssize_t n = write(c->fd, c->out.p + c->out.off, c->out.len - c->out.off);
    n_writes++;
    if (n < 0) {
        if (errno == EAGAIN || errno == EINTR) { set_out(c, 1); return 0; }
        conn_free(c);
        return -1;
    }
    c->out.off += (size_t)n;
    if (c->out.off == c->out.len) {
        c->out.off = c->out.len = 0;
        set_out(c, 0);
        if (c->state == ST_CLOSING) { conn_free(c); return -1; }
    } else {
        set_out(c, 1);
    }
    return 0;
}

/* broadcast: hand one iteration's batch to a connection, at most one write. */
static void deliver(conn *c, const unsigned char *data, size_t len) {
    if (c->out.off != c->out.len) { /* socket was full: the batch joins the backlog */
        if (c->out.len - c->out.off + len > MAX_BACKLOG) { conn_free(c); return; }
        buf_append(&c->out, data, len);
        return;
    }
    ssize_t n = write(c->fd, data, len);
    n_writes++;
    if (n < 0) {
        if (errno != EAGAIN && errno != EINTR) { conn_free(c); return; }
        n = 0;
    }
    if ((size_t)n < len) {
        buf_append(&c->out, data + n, len - (size_t)n);
        set_out(c, 1);
    }
}

static size_t server_header(unsigned char *h, unsigned b0, uint64_t n) {
    h[0] = (unsigned char)b0;
    if (n < 126) { h[1] = (unsigned char)n; return 2; }
    if (n < 65536) { h[1] = 126; h[2] = (unsigned char)(n >> 8); h[3] = (unsigned char)n; return 4; }
    h[1] = 127;
    for (int i = 0; i < 8; i++) h[2 + i] = (unsigned char)(n >> (56 - 8 * i));
    return 10;
}

/* Append header + unmasked payload to b; the payload is unmasked word by word. */
static void append_frame(buf *b, unsigned b0, const unsigned char *payload, uint64_t n, const unsigned char key[4]) {
    unsigned char h[10];
    size_t hl = server_header(h, b0, n);
    buf_reserve(b, hl + (size_t)n);
    unsigned char *w = b->p + b->len;
    memcpy(w, h, hl);
    w += hl;
    uint32_t k32;
    memcpy(&k32, key, 4);
    uint64_t k64 = (uint64_t)k32 << 32 | k32;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, payload + i, 8);
        v ^= k64;
        memcpy(w + i, &v, 8);
    }
    for (; i < n; i++) w[i] = payload[i] ^ key[i & 3];
    b->len += hl + (size_t)n;
}

static int handshake(conn *c) {
    unsigned char *end = memmem(c->in.p, c->in.len, "\r\n\r\n", 4);
    if (!end) return c->in.len > MAX_HEADER ? -1 : 0;
    *end = 0;
    char *key = NULL;
    for (char *line = strstr((char *)c->in.p, "\r\n"); line; line = strstr(line, "\r\n")) {
        line += 2;
        if (strncasecmp(line, "Sec-WebSocket-Key:", 18) == 0) {
            key = line + 18;
            while (*key == ' ' || *key == '\t') key++;
            break;
        }
    }
    if (!key) return -1;
    size_t kl = strcspn(key, "\r\n \t");
    static const char guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
    char cat[128];
    if (kl == 0 || kl + sizeof guid > sizeof cat) return -1;
    memcpy(cat, key, kl);
    memcpy(cat + kl, guid, sizeof guid - 1);
    unsigned char digest[20];
    sha1((unsigned char *)cat, kl + sizeof guid - 1, digest);
    char accept[32];
    base64(digest, 20, accept);
    char resp[256];
    int rl = snprintf(resp, sizeof resp,
                      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n", accept);
    buf_append(&c->out, resp, (size_t)rl);
    size_t used = (size_t)(end + 4 - c->in.p);
    memmove(c->in.p, c->in.p + used, c->in.len - used);
    c->in.len -= used;
    c->state = ST_OPEN;
    if (g_broadcast) {
        c->live_idx = g_nlive;
        g_live[g_nlive++] = c;
    }
    return 1;
}

/* Parse every complete frame in c->in; echo into c->out or broadcast into g_batch.
 * Returns 0, or -1 to drop the connection (protocol error). */
static int parse_frames(conn *c) {
    unsigned char *p = c->in.p;
    size_t len = c->in.len, pos = 0;
    while (c->state == ST_OPEN && len - pos >= 2) {
        unsigned b0 = p[pos], b1 = p[pos + 1];
        if (!(b1 & 0x80)) return -1; /* client frames must be masked */
        uint64_t n = b1 & 0x7f;
        size_t hl = 2;
        if (n == 126) {
            if (len - pos < 4) break;
            n = (uint64_t)p[pos + 2] << 8 | p[pos + 3];
            hl = 4;
        } else if (n == 127) {
            if (len - pos < 10) break;
            n = 0;
            for (int i = 0; i < 8; i++) n = n << 8 | p[pos + 2 + i];
            hl = 10;
        }
        if (n > MAX_FRAME) return -1;
        if (len - pos < hl + 4 + n) break;
        const unsigned char *key = p + pos + hl, *payload = key + 4;
        unsigned op = b0 & 0x0f;
        if (op == 0x8) {                          /* close: answer with the same payload, then go */
            append_frame(&c->out, 0x88, payload, n > 125 ? 125 : n, key);
            c->state = ST_CLOSING;
            live_remove(c);
        } else if (op == 0x9) {                   /* ping -> pong, to the sender only */
            append_frame(&c->out, 0x8A, payload, n, key);
        } else if (op == 0xA) {                   /* pong: nothing */
        } else if (op <= 0x2) {
            n_msgs_in++;
            append_frame(g_broadcast ? &g_batch : &c->out, b0 & 0x8f, payload, n, key);
        } else {
            return -1;
        }
        pos += hl + 4 + (size_t)n;
    }
    memmove(p, p + pos, len - pos);
    c->in.len = len - pos;
    return 0;
}

/* One read; then (echo) one write of everything it produced. */
static void on_readable(conn *c) {
    if (c->in.cap - c->in.len < 4096) buf_reserve(&c->in, c->in.cap ? c->in.cap : RBUF_INIT);
    ssize_t n = read(c->fd, c->in.p + c->in.len, c->in.cap - c->in.len);
    n_reads++;
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) { conn_free(c); return; }
    if (n < 0) return;
    c->in.len += (size_t)n;
    if (c->state == ST_HANDSHAKE) {
        int r = handshake(c);
        if (r < 0) { conn_free(c); return; }
        if (r == 0) return;
    }
    if (parse_frames(c) < 0) { conn_free(c); return; }
    if (!g_broadcast || c->state == ST_CLOSING || c->out.len != c->out.off) flush(c);
}

static void on_accept(int lfd) {
    for (int i = 0; i < 256; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) return;
        if (fd >= g_max_fd) { close(fd); continue; }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        conn *c = calloc(1, sizeof *c);
        if (!c) { close(fd); return; }
        c->fd = fd;
        c->live_idx = -1;
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
        if (epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev) != 0) { close(fd); free(c); continue; }
        g_by_fd[fd] = c;
    }
}

static void on_signal(int sig) { (void)sig; g_stop = 1; }

static void usage(void) {
    fprintf(stderr, "usage: epoll_server echo|broadcast -P PORT\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    if (strcmp(argv[1], "echo") == 0) g_broadcast = 0;
    else if (strcmp(argv[1], "broadcast") == 0) g_broadcast = 1;
    else usage();
    int port = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-P") == 0 && i + 1 < argc) port = atoi(argv[++i]);
        else usage();
    }
    if (port <= 0 || port > 65535) usage();

    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    g_max_fd = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (1u << 20) ? (int)rl.rlim_cur : (1 << 20);
    g_by_fd = calloc((size_t)g_max_fd, sizeof *g_by_fd);
    g_live = calloc((size_t)g_max_fd, sizeof *g_live);
    if (!g_by_fd || !g_live) die("calloc");

    struct sigaction sa = {0};
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) die("socket");
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(lfd, (struct sockaddr *)&sin, sizeof sin) != 0) die("bind");
    if (listen(lfd, 4096) != 0) die("listen");
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    if (g_ep < 0) die("epoll_create1");
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(g_ep, EPOLL_CTL_ADD, lfd, &lev) != 0) die("epoll_ctl");
    printf("epoll_server %s listening on 127.0.0.1:%d\n", argv[1], port);
    fflush(stdout);

    struct epoll_event evs[MAX_EVENTS];
    while (!g_stop) {
        int n = epoll_wait(g_ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (!c) { on_accept(lfd); continue; }
            /* a connection freed earlier in this batch cannot appear: frees happen only for
             * the connection whose event is being handled, or in deliver() below */
            if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                int fd = c->fd;
                on_readable(c);
                if (g_by_fd[fd] != c) continue;
            }
            if (evs[i].events & EPOLLOUT) flush(c);
        }
        if (g_broadcast && g_batch.len) {
            /* deliver() may free a receiver (swap-remove), so walk from the end */
            for (int i = g_nlive - 1; i >= 0; i--) {
                if (i >= g_nlive) continue;
                deliver(g_live[i], g_batch.p, g_batch.len);
            }
            g_batch.len = 0;
        }
    }
    fprintf(stderr, "epoll_server: reads %llu, writes %llu, messages in %llu\n", n_reads, n_writes, n_msgs_in);
    return 0;
}
