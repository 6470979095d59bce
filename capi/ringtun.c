//go:build linux && cgo

/* libringtun's C half: the last error, the logger, UTF-16 names, the
 * session table and the four packet calls, which work on the session's
 * rings without calling into Go.
 *
 * The rings follow package ring's protocol (Wintun's): a 12-byte header
 * of Head, Tail and Alertable, then capacity bytes of records (a 4-byte
 * Size, the packet, padding to 4) with TrailingSize bytes of slack after.
 * This side is the consumer of the receive ring and the producer of the
 * send ring; the Go driver is the other side of both, and everything it
 * wrote is checked before use, as package ring checks its peer.
 *
 * Memory ordering: every load and store of a shared word (Head, Tail,
 * Alertable, SpaceWanted) is a C11 sequentially consistent atomic, the
 * same as Go's sync/atomic, so that
 *   - a side's writes of a record happen before its store of Tail (or its
 *     reads before its store of Head), and the peer that loads that word
 *     sees them;
 *   - "store Alertable, load Tail" here (receive) and the driver's
 *     "store Tail, load Alertable", "store Tail, load Alertable" here
 *     (send) and the driver's "store Alertable, load Tail" (and its
 *     "store WriterNotified 0, load Tail"), like "store Head, exchange SpaceWanted" here
 *     and its "exchange SpaceWanted, load Head", cannot both miss each
 *     other, so a sleeping driver is always woken.
 * Record Size words are read once with a relaxed atomic load and checked:
 * the peer may change them at any time. */

#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "wintun.h"
#include "capi.h"
#include "_cgo_export.h"

#define RT_HEADER 12u
#define RT_TRAILING 0x10000u
#define RT_FLAG 0x80000000u
#define RT_CONTROL 64u

#define TAG_MASK 3u
#define TAG_SESSION 2u
#define TAG_EVENT 3u
#define SLOT_BITS 10u
#define SLOTS (1u << SLOT_BITS)
#define GEN_MASK ((uintptr_t)-1 >> (SLOT_BITS + 2))

/* ---- the last error ---- */

static _Thread_local DWORD last_error;

static void set_error(DWORD e) { last_error = e; }

DWORD RingtunGetLastError(VOID) { return last_error; }

/* ---- the logger ---- */

static _Atomic(WINTUN_LOGGER_CALLBACK) logger;

VOID WintunSetLogger(WINTUN_LOGGER_CALLBACK NewLogger) { atomic_store(&logger, NewLogger); }

/* utf8_next decodes one code point of s[0..n) at *i, or U+FFFD for a
 * byte that does not start a valid sequence. */
static uint32_t utf8_next(const unsigned char *s, size_t n, size_t *i)
{
    unsigned char c = s[*i];
    uint32_t cp, min;
    size_t len;
    if (c < 0x80)
        return (*i)++, c;
    if ((c & 0xE0) == 0xC0)
        cp = c & 0x1F, len = 2, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        cp = c & 0x0F, len = 3, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        cp = c & 0x07, len = 4, min = 0x10000;
    else
        return (*i)++, 0xFFFD;
    if (*i + len > n)
        return (*i)++, 0xFFFD;
    for (size_t k = 1; k < len; k++)
    {
        if ((s[*i + k] & 0xC0) != 0x80)
            return (*i)++, 0xFFFD;
        cp = cp << 6 | (s[*i + k] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return (*i)++, 0xFFFD;
    *i += len;
    return cp;
}

void rtLogUTF8(int level, uint64_t timestamp, const char *msg, size_t n)
{
    WINTUN_LOGGER_CALLBACK f = atomic_load(&logger);
    if (!f)
        return;
    WCHAR small[512], *buf = small;
    if (n + 1 > sizeof(small) / sizeof(small[0]))
    {
        buf = (WCHAR *)malloc((n + 1) * sizeof(WCHAR)); /* n bytes never need more than n units */
        if (!buf)
            return;
    }
    size_t o = 0;
    for (size_t i = 0; i < n;)
    {
        uint32_t cp = utf8_next((const unsigned char *)msg, n, &i);
        if (cp >= 0x10000)
        {
            cp -= 0x10000;
            buf[o++] = (WCHAR)(0xD800 | (cp >> 10));
            buf[o++] = (WCHAR)(0xDC00 | (cp & 0x3FF));
        }
        else
            buf[o++] = (WCHAR)cp;
    }
    buf[o] = 0;
    f((WINTUN_LOGGER_LEVEL)level, timestamp, buf);
    if (buf != small)
        free(buf);
}

/* ---- UTF-16 arguments ---- */

/* utf16_arg converts a zero-terminated UTF-16 string of fewer than max
 * units to UTF-8 in out (at least 3*max bytes). */
static DWORD utf16_arg(LPCWSTR in, size_t max, char *out)
{
    if (!in)
        return ERROR_INVALID_PARAMETER;
    size_t o = 0, i = 0;
    for (;; i++)
    {
        if (i >= max - 1 && in[i])
            return ERROR_BUFFER_OVERFLOW;
        uint32_t cp = in[i];
        if (!cp)
            break;
        if (cp >= 0xD800 && cp <= 0xDBFF)
        {
            uint32_t lo = in[i + 1];
            if (lo < 0xDC00 || lo > 0xDFFF)
                return ERROR_NO_UNICODE_TRANSLATION;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i++;
        }
        else if (cp >= 0xDC00 && cp <= 0xDFFF)
            return ERROR_NO_UNICODE_TRANSLATION;
        if (cp < 0x80)
            out[o++] = (char)cp;
        else if (cp < 0x800)
            out[o++] = (char)(0xC0 | cp >> 6), out[o++] = (char)(0x80 | (cp & 0x3F));
        else if (cp < 0x10000)
            out[o++] = (char)(0xE0 | cp >> 12), out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F)),
            out[o++] = (char)(0x80 | (cp & 0x3F));
        else
            out[o++] = (char)(0xF0 | cp >> 18), out[o++] = (char)(0x80 | ((cp >> 12) & 0x3F)),
            out[o++] = (char)(0x80 | ((cp >> 6) & 0x3F)), out[o++] = (char)(0x80 | (cp & 0x3F));
    }
    out[o] = 0;
    return ERROR_SUCCESS;
}

/* ---- adapters: Go does the work ---- */

static bool is_adapter(WINTUN_ADAPTER_HANDLE a) { return a && ((uintptr_t)a & TAG_MASK) == 1; }

static WINTUN_ADAPTER_HANDLE adapter_result(DWORD e, uintptr_t h)
{
    if (e)
    {
        set_error(e);
        return NULL;
    }
    return (WINTUN_ADAPTER_HANDLE)h;
}

WINTUN_ADAPTER_HANDLE WintunCreateAdapter(LPCWSTR Name, LPCWSTR TunnelType, const GUID *RequestedGUID)
{
    char name[3 * WINTUN_MAX_ADAPTER_NAME], type[3 * WINTUN_MAX_POOL];
    DWORD e = utf16_arg(Name, WINTUN_MAX_ADAPTER_NAME, name);
    if (!e)
        e = utf16_arg(TunnelType, WINTUN_MAX_POOL, type);
    uintptr_t h = 0;
    if (!e)
        e = rtGoCreateAdapter(name, type, (GUID *)RequestedGUID, &h);
    return adapter_result(e, h);
}

WINTUN_ADAPTER_HANDLE WintunOpenAdapter(LPCWSTR Name)
{
    char name[3 * WINTUN_MAX_ADAPTER_NAME];
    DWORD e = utf16_arg(Name, WINTUN_MAX_ADAPTER_NAME, name);
    uintptr_t h = 0;
    if (!e)
        e = rtGoOpenAdapter(name, &h);
    return adapter_result(e, h);
}

static void end_sessions_of(WINTUN_ADAPTER_HANDLE a);

VOID WintunCloseAdapter(WINTUN_ADAPTER_HANDLE Adapter)
{
    if (!Adapter)
        return;
    if (!is_adapter(Adapter))
    {
        set_error(ERROR_INVALID_HANDLE);
        return;
    }
    end_sessions_of(Adapter);
    DWORD e = rtGoCloseAdapter((uintptr_t)Adapter);
    if (e)
        set_error(e);
}

BOOL WintunDeleteDriver(VOID)
{
    DWORD e = rtGoDeleteDriver();
    if (e)
    {
        set_error(e);
        return FALSE;
    }
    return TRUE;
}

VOID WintunGetAdapterLUID(WINTUN_ADAPTER_HANDLE Adapter, NET_LUID *Luid)
{
    uint64_t v = 0;
    DWORD e = Luid ? (is_adapter(Adapter) ? rtGoAdapterLUID((uintptr_t)Adapter, &v) : ERROR_INVALID_HANDLE)
                   : ERROR_INVALID_PARAMETER;
    if (Luid)
        Luid->Value = v;
    if (e)
        set_error(e);
}

DWORD WintunGetRunningDriverVersion(VOID)
{
    uint32_t v = 0;
    DWORD e = rtGoRunningVersion(&v);
    if (e)
    {
        set_error(e);
        return 0;
    }
    return v;
}

/* ---- sessions ---- */

struct ring_header
{
    _Atomic uint32_t head;      /* written by the consumer */
    _Atomic uint32_t tail;      /* written by the producer */
    _Atomic int32_t alertable;  /* written by the consumer */
};

/* One side of one ring, with its private state. Its bitmaps have a bit for
 * each 4-byte offset: where the records handed out start, and which of
 * them were given back, so that a pointer that is not one of ours is
 * refused and the peer's tampering is noticed. */
struct side
{
    pthread_mutex_t mu;
    struct ring_header *ring;
    BYTE *data;
    uint32_t next;   /* the next record to receive or allocate */
    uint32_t front;  /* the first record not yet given back: the published word */
    uint32_t peer;   /* the last peer word read and checked */
    uint64_t *starts, *returned;
    DWORD err;       /* sticky: ERROR_HANDLE_EOF or ERROR_INVALID_DATA */
    bool alertable;  /* receive ring: this side has set Alertable */
    _Alignas(64) char pad[1];
};

struct session
{
    struct side rx; /* consumer of the receive ring */
    struct side tx; /* producer of the send ring */
    uint32_t capacity, mask;
    BYTE *map;
    size_t map_size;
    _Atomic uint32_t *space_wanted;   /* control block word 0 */
    _Atomic uint32_t *writer_notified; /* control block word 1 */
    int read_fd, send_fd, space_fd;
    uintptr_t go_id;
    WINTUN_ADAPTER_HANDLE adapter;
};

/* A slot of the session table. Calls count themselves in on their side
 * (rx or tx, separate cache lines); EndSession marks the slot dead, waits
 * until no call is in, and only then frees the session, so no call ever
 * touches freed memory. */
struct slot
{
    _Alignas(64) _Atomic long rx_calls;
    _Alignas(64) _Atomic long tx_calls;
    _Alignas(64) _Atomic bool live;
    _Atomic uintptr_t gen;
    struct session *s; /* non-NULL while the slot is taken; under slots_mu */
};

static struct slot slots[SLOTS];
static pthread_mutex_t slots_mu = PTHREAD_MUTEX_INITIALIZER;

static uintptr_t handle_of(uint32_t idx, uintptr_t gen, uintptr_t tag)
{
    return ((gen & GEN_MASK) << SLOT_BITS | idx) << 2 | tag;
}

/* enter looks up a session or event handle and counts a call in on one
 * side; NULL and ERROR_INVALID_HANDLE if it is not a live one. */
static struct session *enter(const void *h, uintptr_t tag, bool rx, struct slot **out)
{
    uintptr_t v = (uintptr_t)h;
    if (!h || (v & TAG_MASK) != tag)
        goto invalid;
    struct slot *sl = &slots[(v >> 2) & (SLOTS - 1)];
    _Atomic long *calls = rx ? &sl->rx_calls : &sl->tx_calls;
    atomic_fetch_add(calls, 1);
    if (!atomic_load(&sl->live) || (atomic_load(&sl->gen) & GEN_MASK) != v >> (SLOT_BITS + 2))
    {
        atomic_fetch_sub(calls, 1);
        goto invalid;
    }
    *out = sl;
    return sl->s;
invalid:
    set_error(ERROR_INVALID_HANDLE);
    return NULL;
}

static void leave(struct slot *sl, bool rx) { atomic_fetch_sub(rx ? &sl->rx_calls : &sl->tx_calls, 1); }

static void signal_fd(int fd)
{
    uint64_t one = 1;
    while (write(fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
}

static uint32_t align4(uint32_t n) { return (n + 3) & ~3u; }
static uint32_t dist(const struct session *s, uint32_t from, uint32_t to) { return (to - from) & s->mask; }
static uint32_t size_at(const struct side *d, uint32_t off) { return __atomic_load_n((uint32_t *)(d->data + off), __ATOMIC_RELAXED); }
static void set_size(struct side *d, uint32_t off, uint32_t v) { __atomic_store_n((uint32_t *)(d->data + off), v, __ATOMIC_RELAXED); }
static bool bit(const uint64_t *b, uint32_t off) { return b[off / 256] >> (off / 4 % 64) & 1; }
static void bit_set(uint64_t *b, uint32_t off) { b[off / 256] |= (uint64_t)1 << (off / 4 % 64); }
static void bit_clear(uint64_t *b, uint32_t off) { b[off / 256] &= ~((uint64_t)1 << (off / 4 % 64)); }

/* record_of returns the offset of the record whose packet is p, if it is
 * one this side handed out and has not had back. */
static bool record_of(const struct session *s, const struct side *d, const BYTE *p, uint32_t *off)
{
    uintptr_t at = (uintptr_t)p - (uintptr_t)d->data;
    if (!p || (uintptr_t)p < (uintptr_t)d->data || at < 4 || at - 4 >= s->capacity || (at - 4) % 4)
        return false;
    *off = (uint32_t)(at - 4);
    return bit(d->starts, *off) && !bit(d->returned, *off);
}

static bool side_init(struct side *d, BYTE *ring, uint32_t capacity)
{
    memset(d, 0, sizeof(*d));
    pthread_mutex_init(&d->mu, NULL);
    d->ring = (struct ring_header *)ring;
    d->data = ring + RT_HEADER;
    size_t words = capacity / 4 / 64;
    d->starts = (uint64_t *)calloc(words, sizeof(uint64_t));
    d->returned = (uint64_t *)calloc(words, sizeof(uint64_t));
    return d->starts && d->returned;
}

static void side_free(struct side *d)
{
    free(d->starts);
    free(d->returned);
    pthread_mutex_destroy(&d->mu);
}

static void session_free(struct session *s)
{
    if (s->map)
        munmap(s->map, s->map_size);
    side_free(&s->rx);
    side_free(&s->tx);
    int fds[] = { s->read_fd, s->send_fd, s->space_fd };
    for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
        if (fds[i] >= 0)
            close(fds[i]);
    free(s);
}

/* session_map builds the C half over what Go started. */
static DWORD session_map(struct session *s, const struct rt_shared *sh, uint32_t capacity)
{
    s->read_fd = s->send_fd = s->space_fd = -1;
    s->capacity = capacity;
    s->mask = capacity - 1;
    size_t ring_size = RT_HEADER + (size_t)capacity + RT_TRAILING;
    if (sh->size != 2 * ring_size + RT_CONTROL)
        return ERROR_INVALID_DATA;
    if (!side_init(&s->rx, NULL, capacity) || !side_init(&s->tx, NULL, capacity))
        return ERROR_NOT_ENOUGH_MEMORY;
    s->read_fd = fcntl(sh->read_fd, F_DUPFD_CLOEXEC, 0);
    s->send_fd = fcntl(sh->send_fd, F_DUPFD_CLOEXEC, 0);
    s->space_fd = fcntl(sh->space_fd, F_DUPFD_CLOEXEC, 0);
    if (s->read_fd < 0 || s->send_fd < 0 || s->space_fd < 0)
        return ERROR_TOO_MANY_OPEN_FILES;
    void *m = mmap(NULL, sh->size, PROT_READ | PROT_WRITE, MAP_SHARED, sh->mem_fd, 0);
    if (m == MAP_FAILED)
        return ERROR_NOT_ENOUGH_MEMORY;
    s->map = (BYTE *)m;
    s->map_size = sh->size;
    s->rx.ring = (struct ring_header *)s->map;
    s->rx.data = s->map + RT_HEADER;
    s->tx.ring = (struct ring_header *)(s->map + ring_size);
    s->tx.data = s->map + ring_size + RT_HEADER;
    s->space_wanted = (_Atomic uint32_t *)(s->map + 2 * ring_size);
    s->writer_notified = s->space_wanted + 1;
    /* Both sides start where the rings are (a fresh session: 0). */
    s->rx.next = s->rx.front = s->rx.peer = atomic_load(&s->rx.ring->head);
    s->tx.next = s->tx.front = s->tx.peer = atomic_load(&s->tx.ring->tail);
    /* The program waits on the read-wait event itself, after
     * WintunReceivePacket said ERROR_NO_MORE_ITEMS: that call sets
     * Alertable (and one that returns a packet clears it), so the driver
     * signals the event exactly when the program may be waiting. Until the
     * first call, it is set. */
    atomic_store(&s->rx.ring->alertable, 1);
    s->rx.alertable = true;
    return ERROR_SUCCESS;
}

WINTUN_SESSION_HANDLE WintunStartSession(WINTUN_ADAPTER_HANDLE Adapter, DWORD Capacity)
{
    if (!is_adapter(Adapter))
    {
        set_error(ERROR_INVALID_HANDLE);
        return NULL;
    }
    struct rt_shared sh;
    memset(&sh, 0, sizeof(sh));
    DWORD e = rtGoStartSession((uintptr_t)Adapter, Capacity, &sh);
    if (e)
    {
        set_error(e);
        return NULL;
    }
    struct session *s = (struct session *)calloc(1, sizeof(*s));
    e = s ? session_map(s, &sh, Capacity) : ERROR_NOT_ENOUGH_MEMORY;
    if (e)
    {
        if (s)
            session_free(s);
        rtGoEndSession(sh.id);
        set_error(e);
        return NULL;
    }
    s->go_id = sh.id;
    s->adapter = Adapter;
    pthread_mutex_lock(&slots_mu);
    uint32_t idx = 0;
    while (idx < SLOTS && slots[idx].s)
        idx++;
    if (idx == SLOTS)
    {
        pthread_mutex_unlock(&slots_mu);
        session_free(s);
        rtGoEndSession(sh.id);
        set_error(ERROR_TOO_MANY_OPEN_FILES);
        return NULL;
    }
    struct slot *sl = &slots[idx];
    sl->s = s;
    uintptr_t gen = atomic_load(&sl->gen);
    atomic_store(&sl->live, true);
    pthread_mutex_unlock(&slots_mu);
    return (WINTUN_SESSION_HANDLE)handle_of(idx, gen, TAG_SESSION);
}

/* end_slot ends the session in sl, which the caller has marked dead:
 * waits for the calls in it, wakes a waiter on the read-wait event, ends
 * the Go half and frees everything. */
static void end_slot(struct slot *sl)
{
    struct timespec pause = { 0, 50000 };
    for (int i = 0; atomic_load(&sl->rx_calls) || atomic_load(&sl->tx_calls); i++)
        i < 100 ? (void)sched_yield() : (void)nanosleep(&pause, NULL);
    struct session *s = sl->s;
    signal_fd(s->read_fd);
    rtGoEndSession(s->go_id);
    session_free(s);
    pthread_mutex_lock(&slots_mu);
    sl->s = NULL;
    pthread_mutex_unlock(&slots_mu);
}

/* retire marks the slot of a live handle dead (no new call gets in) and
 * makes its handles stale. */
static struct slot *retire(uintptr_t v)
{
    struct slot *sl = &slots[(v >> 2) & (SLOTS - 1)];
    pthread_mutex_lock(&slots_mu);
    bool ok = sl->s && atomic_load(&sl->live) && (atomic_load(&sl->gen) & GEN_MASK) == v >> (SLOT_BITS + 2);
    if (ok)
    {
        atomic_store(&sl->live, false);
        atomic_fetch_add(&sl->gen, 1);
    }
    pthread_mutex_unlock(&slots_mu);
    return ok ? sl : NULL;
}

VOID WintunEndSession(WINTUN_SESSION_HANDLE Session)
{
    uintptr_t v = (uintptr_t)Session;
    struct slot *sl = Session && (v & TAG_MASK) == TAG_SESSION ? retire(v) : NULL;
    if (!sl)
    {
        set_error(ERROR_INVALID_HANDLE);
        return;
    }
    end_slot(sl);
}

static void end_sessions_of(WINTUN_ADAPTER_HANDLE a)
{
    for (uint32_t i = 0; i < SLOTS; i++)
    {
        pthread_mutex_lock(&slots_mu);
        struct slot *sl = &slots[i];
        bool mine = sl->s && atomic_load(&sl->live) && sl->s->adapter == a;
        uintptr_t gen = atomic_load(&sl->gen);
        pthread_mutex_unlock(&slots_mu);
        if (mine && (sl = retire(handle_of(i, gen, TAG_SESSION))))
            end_slot(sl);
    }
}

HANDLE WintunGetReadWaitEvent(WINTUN_SESSION_HANDLE Session)
{
    struct slot *sl;
    if (!enter(Session, TAG_SESSION, true, &sl))
        return NULL;
    leave(sl, true);
    return (HANDLE)(((uintptr_t)Session & ~(uintptr_t)TAG_MASK) | TAG_EVENT);
}

int RingtunEventFd(HANDLE Event)
{
    struct slot *sl;
    struct session *s = enter(Event, TAG_EVENT, true, &sl);
    if (!s)
        return -1;
    int fd = s->read_fd;
    leave(sl, true);
    return fd;
}

/* ---- giving records back, either side ---- */

/* advance moves the side's published word (Head of the receive ring, Tail
 * of the send ring) over the run of given-back records at its front, and
 * reports whether it moved. flag is what the flag bit of a given-back
 * record is: set (released) on the receive side, clear (committed) on the
 * send side. */
static bool advance(struct session *s, struct side *d, uint32_t flag, _Atomic uint32_t *word)
{
    uint32_t old = d->front;
    while (d->front != d->next && bit(d->returned, d->front))
    {
        uint32_t size = size_at(d, d->front);
        if ((size & RT_FLAG) != flag)
        {
            d->err = ERROR_INVALID_DATA; /* the driver flipped the flag bit back */
            return false;
        }
        size &= ~RT_FLAG;
        uint32_t aligned = align4(4 + size), next = (d->front + aligned) & s->mask;
        if (size > WINTUN_MAX_IP_PACKET_SIZE || aligned > dist(s, d->front, d->next) ||
            (next != d->next && !bit(d->starts, next)))
        {
            d->err = ERROR_INVALID_DATA; /* a record handed out changed size */
            return false;
        }
        bit_clear(d->starts, d->front);
        bit_clear(d->returned, d->front);
        d->front = next;
    }
    if (d->front == old || d->err == ERROR_HANDLE_EOF)
        return false;
    atomic_store(word, d->front);
    return true;
}

/* give_back gives the record whose packet is p back to the driver: it
 * flips the record's flag bit to flag, then advances. It returns false for
 * a packet that is not one this side handed out and has not had back; it
 * sets *moved when the published word moved. */
static bool give_back(struct session *s, struct side *d, const BYTE *p, uint32_t flag, _Atomic uint32_t *word,
                      bool *moved)
{
    uint32_t off;
    if (!record_of(s, d, p, &off))
        return false;
    uint32_t size = size_at(d, off);
    if ((size & RT_FLAG) == flag)
        d->err = ERROR_INVALID_DATA; /* the driver flipped the flag bit first */
    else
    {
        set_size(d, off, size ^ RT_FLAG);
        bit_set(d->returned, off);
        *moved = advance(s, d, flag, word);
    }
    return true;
}

/* ---- the receive ring: this side consumes ---- */

/* rx_look reads and checks the driver's Tail. */
static DWORD rx_look(struct session *s)
{
    struct side *d = &s->rx;
    if (d->err)
        return d->err;
    uint32_t tail = atomic_load(&d->ring->tail);
    if (tail >= s->capacity)
        d->err = ERROR_HANDLE_EOF;
    else if (tail % 4 || dist(s, d->front, tail) < dist(s, d->front, d->peer))
        d->err = ERROR_INVALID_DATA; /* misaligned, or moved back */
    else
        d->peer = tail;
    return d->err;
}

BYTE *WintunReceivePacket(WINTUN_SESSION_HANDLE Session, DWORD *PacketSize)
{
    struct slot *sl;
    struct session *s = enter(Session, TAG_SESSION, true, &sl);
    if (!s)
        return NULL;
    BYTE *p = NULL;
    DWORD e = ERROR_INVALID_PARAMETER;
    struct side *d = &s->rx;
    if (PacketSize)
    {
        pthread_mutex_lock(&d->mu);
        e = rx_look(s);
        if (!e && d->next == d->peer && !d->alertable)
        {
            /* The program is about to wait on the read-wait event: ask the
             * driver to signal it, then look once more. */
            atomic_store(&d->ring->alertable, 1);
            d->alertable = true;
            e = rx_look(s);
        }
        if (!e && d->next == d->peer)
            e = ERROR_NO_MORE_ITEMS;
        if (!e && d->alertable)
        {
            /* A busy program is not waiting: spare the driver the signal. */
            atomic_store(&d->ring->alertable, 0);
            d->alertable = false;
        }
        if (!e)
        {
            uint32_t size = size_at(d, d->next), aligned = align4(4 + size);
            if (size > WINTUN_MAX_IP_PACKET_SIZE || aligned > dist(s, d->next, d->peer))
                e = d->err = ERROR_INVALID_DATA;
            else
            {
                bit_set(d->starts, d->next);
                p = d->data + d->next + 4;
                *PacketSize = size;
                d->next = (d->next + aligned) & s->mask;
            }
        }
        pthread_mutex_unlock(&d->mu);
    }
    leave(sl, true);
    if (!p)
        set_error(e);
    return p;
}

VOID WintunReleaseReceivePacket(WINTUN_SESSION_HANDLE Session, const BYTE *Packet)
{
    struct slot *sl;
    struct session *s = enter(Session, TAG_SESSION, true, &sl);
    if (!s)
        return;
    bool moved = false, ok;
    pthread_mutex_lock(&s->rx.mu);
    ok = give_back(s, &s->rx, Packet, RT_FLAG, &s->rx.ring->head, &moved);
    pthread_mutex_unlock(&s->rx.mu);
    if (moved && atomic_load(s->space_wanted) && atomic_exchange(s->space_wanted, 0))
        signal_fd(s->space_fd);
    leave(sl, true);
    if (!ok)
        set_error(ERROR_INVALID_PARAMETER);
}

/* ---- the send ring: this side produces ---- */

/* tx_look reads and checks the driver's Head: it may only move forward,
 * and not past what was published. */
static DWORD tx_look(struct session *s)
{
    struct side *d = &s->tx;
    if (d->err)
        return d->err;
    uint32_t head = atomic_load(&d->ring->head);
    if (head >= s->capacity)
        d->err = ERROR_HANDLE_EOF;
    else if (head % 4 || dist(s, d->peer, head) > dist(s, d->peer, d->front))
        d->err = ERROR_INVALID_DATA;
    else
        d->peer = head;
    return d->err;
}

BYTE *WintunAllocateSendPacket(WINTUN_SESSION_HANDLE Session, DWORD PacketSize)
{
    struct slot *sl;
    struct session *s = enter(Session, TAG_SESSION, false, &sl);
    if (!s)
        return NULL;
    BYTE *p = NULL;
    DWORD e = ERROR_INVALID_PARAMETER;
    struct side *d = &s->tx;
    if (PacketSize <= WINTUN_MAX_IP_PACKET_SIZE)
    {
        uint32_t aligned = align4(4 + PacketSize);
        pthread_mutex_lock(&d->mu);
        e = tx_look(s);
        if (!e && dist(s, d->next, d->peer - 4) < aligned)
            e = ERROR_BUFFER_OVERFLOW;
        if (!e)
        {
            set_size(d, d->next, PacketSize | RT_FLAG);
            bit_set(d->starts, d->next);
            p = d->data + d->next + 4;
            d->next = (d->next + aligned) & s->mask;
        }
        pthread_mutex_unlock(&d->mu);
    }
    leave(sl, false);
    if (!p)
        set_error(e);
    return p;
}

VOID WintunSendPacket(WINTUN_SESSION_HANDLE Session, const BYTE *Packet)
{
    struct slot *sl;
    struct session *s = enter(Session, TAG_SESSION, false, &sl);
    if (!s)
        return;
    bool moved = false, ok;
    pthread_mutex_lock(&s->tx.mu);
    ok = give_back(s, &s->tx, Packet, 0, &s->tx.ring->tail, &moved);
    pthread_mutex_unlock(&s->tx.mu);
    /* The driver's writer sleeps: notify it, once per sleep (the driver
     * clears WriterNotified when it wakes). A call into Go is cheaper than
     * the eventfd, whose wake-up waits for Go's poller: see
     * SharedSession.Notify. */
    if (moved && atomic_load(&s->tx.ring->alertable) && !atomic_exchange(s->writer_notified, 1))
        rtGoNotify(s->go_id);
    leave(sl, false);
    if (!ok)
        set_error(ERROR_INVALID_PARAMETER);
}
