"""The Lua scripts the cluster runs in Redis: each is one atomic step in one round trip.

Nodes (:mod:`hero_fast.cluster.redis_backend`) and publishers (:mod:`hero_fast.publish`) run
the same scripts on the same keys (:class:`hero_fast.cluster.operations.Keys`), so a message
said from a Celery task is numbered exactly as one said on a node.

A script is sent with ``EVAL`` the first time on a connection and with ``EVALSHA`` after
(Redis then knows it); a ``NOSCRIPT`` reply (its script cache was flushed) sends it with
``EVAL`` again. No ``SCRIPT LOAD``, so the Redis user needs only ``EVAL`` and ``EVALSHA``.

Room history (keys ``P he:<room>`` epoch, ``P ho:<room>`` last offset, ``P hs:<room>``
stream of the last messages, entry IDs ``<offset>-1`` with fields ``t`` (sent at, ms) and
``d`` (the signed bus message without its numbering)):

- :data:`SAY` numbers a chat message, appends it to the stream and publishes it with its
  numbering in front (``#<offset>:<epoch>:`` + the signed message: Lua cannot sign, so the
  numbering stays outside the signature); for a room without history it only publishes.
- :data:`POSITION` returns the room's numbering (making a new epoch at offset 0 when there
  is none) and keeps it alive: what a node reads when its first member joins the room.
- :data:`SINCE` returns the numbering and the stream entries after an offset (all of them
  when the epoch asked for is not the current one).

Connection state recovery (``P rec:<hash>`` hash: ``s`` state JSON, ``i`` connection id,
``mp``/``mb`` caps, ``b`` held bytes, ``d`` pushes dropped; ``P recq:<hash>`` list of held
pushes; ``P reci:<id>`` → hash; all with the recovery ttl): :data:`SAVE`, :data:`TAKE`
(atomic, single use) and :data:`HOLD` (appends only while the state exists, capped).
"""

from __future__ import annotations

import hashlib
import re

__all__ = ["HOLD", "POSITION", "SAVE", "SAY", "SCRIPTS", "SINCE", "TAKE", "Script"]


class Script:
    """A Lua script and its SHA-1 (what ``EVALSHA`` names it by)."""

    __slots__ = ("name", "sha", "source")

    def __init__(self, name: str, source: str) -> None:
        self.name = name
        self.source = source.encode()
        self.sha = hashlib.sha1(self.source).hexdigest().encode()

    def commands(self) -> set[str]:
        """The Redis commands the script calls (for the ACL the deployment docs give)."""
        return {m.upper() for m in re.findall(r"redis\.call\('([A-Za-z]+)'", self.source.decode())}

    def __repr__(self) -> str:
        return f"<Script {self.name} {self.sha[:8].decode()}>"


# The numbering is reset (new epoch, offset 1, empty stream) when the epoch or the counter
# is missing: first use, Redis lost them, or they expired after ``keep`` ms of silence.
SAY = Script("say", """
-- KEYS: room options hash, epoch, offset, stream
-- ARGV: room, channel, signed message, a new epoch, now ms, size, ttl ms, keep ms
-- (size '' = the room's options as the servers wrote them into the room options hash)
local size, ttl, keep = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
if not size then
  local spec = redis.call('HGET', KEYS[1], ARGV[1])
  if not spec then
    return redis.error_reply('ERR room does not exist')
  end
  local ok, options = pcall(cjson.decode, spec)
  if not ok or type(options) ~= 'table' then
    return redis.error_reply('ERR malformed room options')
  end
  size, ttl, keep = tonumber(options.size) or 0, tonumber(options.ttl) or 0, tonumber(options.keep) or 0
end
if size <= 0 or ttl <= 0 then
  return {0, '', redis.call('PUBLISH', ARGV[2], ARGV[3])}
end
if keep < ttl then
  keep = ttl
end
local epoch = redis.call('GET', KEYS[2])
local offset
if epoch and redis.call('EXISTS', KEYS[3]) == 1 then
  offset = redis.call('INCR', KEYS[3])
else
  epoch = ARGV[4]
  redis.call('SET', KEYS[2], epoch)
  redis.call('SET', KEYS[3], 1)
  redis.call('DEL', KEYS[4])
  offset = 1
end
redis.call('XADD', KEYS[4], 'MAXLEN', size, offset .. '-1', 't', ARGV[5], 'd', ARGV[3])
local receivers = redis.call('PUBLISH', ARGV[2], '#' .. offset .. ':' .. epoch .. ':' .. ARGV[3])
redis.call('PEXPIRE', KEYS[4], ttl)
redis.call('PEXPIRE', KEYS[2], keep)
redis.call('PEXPIRE', KEYS[3], keep)
return {offset, epoch, receivers}
""")

POSITION = Script("position", """
-- KEYS: epoch, offset, stream; ARGV: a new epoch, keep ms
local epoch = redis.call('GET', KEYS[1])
local offset = redis.call('GET', KEYS[2])
if epoch and offset then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
  return {epoch, tonumber(offset)}
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('SET', KEYS[2], 0, 'PX', ARGV[2])
redis.call('DEL', KEYS[3])
return {ARGV[1], 0}
""")

SINCE = Script("since", """
-- KEYS: epoch, offset, stream; ARGV: the epoch asked for, the first offset wanted
local epoch = redis.call('GET', KEYS[1])
local offset = redis.call('GET', KEYS[2])
if not epoch or not offset then
  return {false, 0, {}}
end
local first = '-'
if epoch == ARGV[1] then
  first = ARGV[2]
end
return {epoch, tonumber(offset), redis.call('XRANGE', KEYS[3], first, '+')}
""")

SAVE = Script("save", """
-- KEYS: state hash, held pushes, id -> hash; ARGV: state, connection id, ttl ms, max pushes,
-- max bytes, hash
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 's', ARGV[1], 'i', ARGV[2], 'mp', ARGV[4], 'mb', ARGV[5], 'b', 0, 'd', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[3])
redis.call('SET', KEYS[3], ARGV[6], 'PX', ARGV[3])
return 1
""")

TAKE = Script("take", """
-- KEYS: state hash, held pushes; ARGV: prefix, hash
local saved = redis.call('HMGET', KEYS[1], 's', 'i', 'd')
if not saved[1] then
  return false
end
local held = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[1], KEYS[2])
if saved[2] then
  local index = ARGV[1] .. 'reci:' .. saved[2]
  if redis.call('GET', index) == ARGV[2] then
    redis.call('DEL', index)
  end
end
return {saved[1], tonumber(saved[3]) or 0, held}
""")

HOLD = Script("hold", """
-- KEYS: id -> hash; ARGV: prefix, push
local hash = redis.call('GET', KEYS[1])
if not hash then
  return 0
end
local state = ARGV[1] .. 'rec:' .. hash
local ttl = redis.call('PTTL', state)
if ttl <= 0 then
  return 0
end
local held = ARGV[1] .. 'recq:' .. hash
local n = redis.call('RPUSH', held, ARGV[2])
local bytes = redis.call('HINCRBY', state, 'b', string.len(ARGV[2]))
local caps = redis.call('HMGET', state, 'mp', 'mb')
local max_pushes, max_bytes = tonumber(caps[1]) or 100, tonumber(caps[2]) or 1048576
local dropped = 0
while n > 0 and (n > max_pushes or bytes > max_bytes) do
  bytes = bytes - string.len(redis.call('LPOP', held))
  n = n - 1
  dropped = dropped + 1
end
if dropped > 0 then
  redis.call('HINCRBY', state, 'd', dropped)
  redis.call('HSET', state, 'b', bytes)
end
redis.call('PEXPIRE', held, ttl)
return 1
""")

SCRIPTS = (SAY, POSITION, SINCE, SAVE, TAKE, HOLD)
