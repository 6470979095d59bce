/* capi_test: libringtun's C API, every function and every error code it
 * sets, from C (one process cannot hold two Go runtimes, so this is not a
 * Go test). Run it as root in a network namespace of its own:
 *
 *     unshare --net build/amd64/capi_test
 *
 * or unprivileged with RINGTUN_DAEMON pointing at a ringtund whose policy
 * lets it have adapters rtc0..rtc9 (the echo exchange is then skipped
 * and the checks that delete adapters with ip(8) are skipped).
 * Exit status 0 when every check passed. Built as C11 (and its header as
 * C++17 by capi_hdr_test.cc), with -Wall -Wextra -Werror, and in CI with
 * AddressSanitizer and UndefinedBehaviorSanitizer. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "echo.h"
#include "wintun.h"

static int failures;

#define CHECK(cond, ...)                                                                                               \
    do                                                                                                                 \
    {                                                                                                                  \
        if (!(cond))                                                                                                   \
        {                                                                                                              \
            failures++;                                                                                                \
            fprintf(stderr, "FAIL %s:%d: ", __FILE__, __LINE__);                                                       \
            fprintf(stderr, __VA_ARGS__);                                                                              \
            fputc('\n', stderr);                                                                                       \
        }                                                                                                              \
    } while (0)

/* CHECK_ERR checks that expr failed (is falsy) with last error want. */
#define CHECK_ERR(expr, want)                                                                                          \
    do                                                                                                                 \
    {                                                                                                                  \
        bool ok_ = (expr) ? true : false;                                                                              \
        DWORD got_ = GetLastError();                                                                                   \
        CHECK(!ok_ && got_ == (DWORD)(want), "%s: succeeded=%d, last error %u, want %u", #expr, ok_, got_,           \
              (unsigned)(want));                                                                                       \
    } while (0)

static const GUID test_guid = { 0xdeadbabe, 0xcafe, 0xbeef, { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef } };

/* ---- the logger ---- */

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static int log_count, log_bad_time, log_bad_utf16;
static atomic_int other_logger_calls;

static uint64_t now_filetime(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 10000000u + (uint64_t)ts.tv_nsec / 100 + 116444736000000000ull;
}

static bool valid_utf16(LPCWSTR m)
{
    for (; *m; m++)
    {
        if (*m >= 0xD800 && *m <= 0xDBFF)
        {
            if (m[1] < 0xDC00 || m[1] > 0xDFFF)
                return false;
            m++;
        }
        else if (*m >= 0xDC00 && *m <= 0xDFFF)
            return false;
    }
    return true;
}

static VOID test_logger(WINTUN_LOGGER_LEVEL level, DWORD64 ts, LPCWSTR msg)
{
    uint64_t now = now_filetime();
    uint64_t diff = now > ts ? now - ts : ts - now;
    pthread_mutex_lock(&log_mu);
    log_count++;
    if (diff > 10000000u) /* one second */
        log_bad_time++;
    if (!msg || !valid_utf16(msg) || level > WINTUN_LOG_ERR)
        log_bad_utf16++;
    pthread_mutex_unlock(&log_mu);
}

static VOID other_logger(WINTUN_LOGGER_LEVEL level, DWORD64 ts, LPCWSTR msg)
{
    (void)level, (void)ts, (void)msg;
    atomic_fetch_add(&other_logger_calls, 1);
}

/* ---- helpers ---- */

static void u16(WCHAR *out, const char *in)
{
    while ((*out++ = (WCHAR)(unsigned char)*in++))
        ;
}

static bool wait_event(HANDLE ev, int ms)
{
    struct pollfd pfd = { .fd = RingtunEventFd(ev), .events = POLLIN };
    if (pfd.fd < 0 || poll(&pfd, 1, ms) != 1)
        return false;
    uint64_t n;
    return read(pfd.fd, &n, sizeof(n)) == sizeof(n);
}

static void run(const char *cmd)
{
    int rc = system(cmd);
    CHECK(rc == 0, "%s: exit %d", cmd, rc);
}

/* ---- the tests ---- */

static void test_names(void)
{
    WCHAR name[300], type[300];
    u16(type, "CTest");
    CHECK_ERR(WintunCreateAdapter(NULL, type, NULL), ERROR_INVALID_PARAMETER);
    CHECK_ERR(WintunCreateAdapter(type, NULL, NULL), ERROR_INVALID_PARAMETER);
    u16(name, "");
    CHECK_ERR(WintunCreateAdapter(name, type, NULL), ERROR_INVALID_NAME);
    u16(name, "bad/name");
    CHECK_ERR(WintunCreateAdapter(name, type, NULL), ERROR_INVALID_NAME);
    u16(name, "sixteen-bytes-xx"); /* IFNAMSIZ is 16 with the zero */
    CHECK_ERR(WintunCreateAdapter(name, type, NULL), ERROR_INVALID_NAME);
    for (int i = 0; i < WINTUN_MAX_ADAPTER_NAME; i++)
        name[i] = u'a';
    name[WINTUN_MAX_ADAPTER_NAME] = 0;
    CHECK_ERR(WintunCreateAdapter(name, type, NULL), ERROR_BUFFER_OVERFLOW);
    CHECK_ERR(WintunOpenAdapter(name), ERROR_BUFFER_OVERFLOW);
    for (int i = 0; i < WINTUN_MAX_POOL; i++)
        type[i] = u't';
    type[WINTUN_MAX_POOL] = 0;
    u16(name, "rtc1");
    CHECK_ERR(WintunCreateAdapter(name, type, NULL), ERROR_BUFFER_OVERFLOW);
    u16(type, "CTest");
    WCHAR lone_high[] = { u'r', 0xD800, u'x', 0 }, lone_low[] = { u'r', 0xDC00, 0 }, cut[] = { u'r', 0xD83D, 0 };
    CHECK_ERR(WintunCreateAdapter(lone_high, type, NULL), ERROR_NO_UNICODE_TRANSLATION);
    CHECK_ERR(WintunCreateAdapter(lone_low, type, NULL), ERROR_NO_UNICODE_TRANSLATION);
    CHECK_ERR(WintunOpenAdapter(cut), ERROR_NO_UNICODE_TRANSLATION);
    CHECK_ERR(WintunCreateAdapter(name, lone_low, NULL), ERROR_NO_UNICODE_TRANSLATION);
    u16(name, "rtc-missing");
    CHECK_ERR(WintunOpenAdapter(name), ERROR_FILE_NOT_FOUND);
    /* A name outside the BMP, valid UTF-16: 4 UTF-8 bytes, a valid name. */
    WCHAR emoji[] = { u'r', 0xD83D, 0xDE00, 0 };
    WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(emoji, type, NULL);
    CHECK(a, "a name with a surrogate pair: error %u", GetLastError());
    CHECK(if_nametoindex("r\xf0\x9f\x98\x80") != 0, "the interface is not named in UTF-8");
    WintunCloseAdapter(a);
}

static void test_adapter(void)
{
    WCHAR name[16], type[16];
    u16(name, "rtc0"), u16(type, "CTest");
    WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(name, type, &test_guid);
    CHECK(a, "create rtc0: error %u", GetLastError());
    if (!a)
        return;
    CHECK_ERR(WintunCreateAdapter(name, type, NULL), ERROR_ALREADY_EXISTS);
    NET_LUID luid;
    WintunGetAdapterLUID(a, &luid);
    CHECK(luid.Value == if_nametoindex("rtc0"), "LUID %llu, index %u", (unsigned long long)luid.Value,
          if_nametoindex("rtc0"));
    WINTUN_ADAPTER_HANDLE b = WintunOpenAdapter(name);
    CHECK(b, "open rtc0: error %u", GetLastError());
    NET_LUID luid2;
    WintunGetAdapterLUID(b, &luid2);
    CHECK(luid2.Value == luid.Value, "the opened handle has another LUID");
    WintunCloseAdapter(b);
    CHECK(if_nametoindex("rtc0") != 0, "closing an opened handle deleted the adapter");
    /* Stale and foreign adapter handles. */
    WintunGetAdapterLUID(b, &luid2);
    CHECK(GetLastError() == ERROR_INVALID_HANDLE && luid2.Value == 0, "LUID of a closed handle: error %u",
          GetLastError());
    CHECK_ERR(WintunStartSession(b, WINTUN_MIN_RING_CAPACITY), ERROR_INVALID_HANDLE);
    CHECK_ERR(WintunStartSession((WINTUN_ADAPTER_HANDLE)(uintptr_t)0x12345679, WINTUN_MIN_RING_CAPACITY),
              ERROR_INVALID_HANDLE);
    WintunCloseAdapter(b); /* twice: an error, not a crash */
    CHECK(GetLastError() == ERROR_INVALID_HANDLE, "closing a closed handle: error %u", GetLastError());
    WintunCloseAdapter(NULL);
    WintunCloseAdapter(a);
    CHECK(if_nametoindex("rtc0") == 0, "closing the creating handle left rtc0 behind");
    CHECK_ERR(WintunOpenAdapter(name), ERROR_FILE_NOT_FOUND);
    DWORD v = WintunGetRunningDriverVersion();
    CHECK(v != 0, "version 0: error %u", GetLastError());
}

static void test_capacities(WINTUN_ADAPTER_HANDLE a)
{
    DWORD bad[] = { 0, 1000, WINTUN_MIN_RING_CAPACITY / 2, WINTUN_MIN_RING_CAPACITY + 4, WINTUN_MAX_RING_CAPACITY * 2 };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        CHECK_ERR(WintunStartSession(a, bad[i]), ERROR_INVALID_PARAMETER);
}

struct poller
{
    HANDLE ev;
    atomic_int woke;
};

static void *poll_thread(void *arg)
{
    struct poller *p = (struct poller *)arg;
    struct pollfd pfd = { .fd = RingtunEventFd(p->ev), .events = POLLIN };
    if (pfd.fd >= 0 && poll(&pfd, 1, 10000) == 1)
        atomic_store(&p->woke, 1);
    return NULL;
}

static void test_session(bool configure)
{
    WCHAR name[16], type[16];
    u16(name, "rtc0"), u16(type, "CTest");
    WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(name, type, &test_guid);
    CHECK(a, "create rtc0: error %u", GetLastError());
    if (!a)
        return;
    test_capacities(a);
    WINTUN_SESSION_HANDLE s = WintunStartSession(a, WINTUN_MIN_RING_CAPACITY);
    CHECK(s, "start session: error %u", GetLastError());
    if (!s)
    {
        WintunCloseAdapter(a);
        return;
    }
    CHECK_ERR(WintunStartSession(a, WINTUN_MIN_RING_CAPACITY), ERROR_ALREADY_INITIALIZED);
    WINTUN_ADAPTER_HANDLE b = WintunOpenAdapter(name);
    CHECK_ERR(WintunStartSession(b, WINTUN_MIN_RING_CAPACITY), ERROR_ALREADY_INITIALIZED);
    WintunCloseAdapter(b);

    HANDLE ev = WintunGetReadWaitEvent(s);
    CHECK(ev && RingtunEventFd(ev) >= 0, "read-wait event %p, fd %d", ev, RingtunEventFd(ev));
    CHECK(RingtunEventFd((HANDLE)s) == -1 && GetLastError() == ERROR_INVALID_HANDLE,
          "a session handle is not an event");
    CHECK(RingtunEventFd((HANDLE)a) == -1 && GetLastError() == ERROR_INVALID_HANDLE,
          "an adapter handle is not an event");

    /* Empty ring: the adapter is down, nothing comes in. */
    DWORD size;
    CHECK_ERR(WintunReceivePacket(s, &size), ERROR_NO_MORE_ITEMS);
    if (configure)
        run("ip addr add 198.18.7.7/24 dev rtc0 && ip link set rtc0 up");
    CHECK_ERR(WintunReceivePacket(s, NULL), ERROR_INVALID_PARAMETER);
    CHECK_ERR(WintunReceivePacket((WINTUN_SESSION_HANDLE)a, &size), ERROR_INVALID_HANDLE);
    CHECK_ERR(WintunReceivePacket((WINTUN_SESSION_HANDLE)(uintptr_t)0xdead0002, &size), ERROR_INVALID_HANDLE);
    CHECK_ERR(WintunAllocateSendPacket(s, WINTUN_MAX_IP_PACKET_SIZE + 1), ERROR_INVALID_PARAMETER);

    /* Foreign packets: refused, nothing else changes. */
    BYTE outside[32];
    WintunReleaseReceivePacket(s, outside);
    CHECK(GetLastError() == ERROR_INVALID_PARAMETER, "releasing a foreign packet: error %u", GetLastError());
    WintunSendPacket(s, outside);
    CHECK(GetLastError() == ERROR_INVALID_PARAMETER, "sending a foreign packet: error %u", GetLastError());

    /* Full ring: records allocated and not sent hold the ring. */
    static BYTE *held[256];
    int n = 0;
    while (n < 256 && (held[n] = WintunAllocateSendPacket(s, 1400)))
        n++;
    CHECK(n > 80 && n < 256 && GetLastError() == ERROR_BUFFER_OVERFLOW, "%d records of 1400 B fit in 128 KiB, error %u",
          n, GetLastError());
    for (int i = 0; i < n; i++)
    {
        make_echo(held[i], 1400, (uint16_t)(1000 + i)); /* the host gets them: valid packets */
        WintunSendPacket(s, held[i]);
    }
    WintunSendPacket(s, held[0]); /* twice */
    CHECK(GetLastError() == ERROR_INVALID_PARAMETER, "sending a packet twice: error %u", GetLastError());
    BYTE *p = NULL;
    for (int i = 0; i < 1000 && !(p = WintunAllocateSendPacket(s, 1400)); i++)
        usleep(1000);
    CHECK(p, "the driver did not make room in the send ring: error %u", GetLastError());
    if (p)
    {
        make_echo(p, 1400, 999);
        WintunSendPacket(s, p);
    }

    if (configure)
    {
        /* The n+1 echo requests above bring n+1 replies of 1400 B, more
         * than the receive ring holds: once it is full the driver waits for
         * room, and only the wake-up ReleaseReceivePacket sends it brings
         * the rest. */
        usleep(300000);
        int replies = 0;
        for (int idle = 0; replies < n + 1 && idle < 40;)
        {
            BYTE *r = WintunReceivePacket(s, &size);
            if (!r)
            {
                idle += !wait_event(ev, 50);
                continue;
            }
            if (size == 1400 && r[20] == 0 && r[24] == 0x12)
                replies++;
            WintunReleaseReceivePacket(s, r);
        }
        CHECK(replies == n + 1, "%d echo replies of %d, through a full receive ring", replies, n + 1);

        /* Echo exchange: ICMP echo requests in, replies out, both sizes. */
        size_t sizes[] = { 28, 1400 };
        for (size_t k = 0; k < 2; k++)
        {
            p = WintunAllocateSendPacket(s, (DWORD)sizes[k]);
            CHECK(p, "allocate: error %u", GetLastError());
            if (!p)
                continue;
            make_echo(p, sizes[k], (uint16_t)k);
            WintunSendPacket(s, p);
            bool got = false;
            for (int tries = 0; !got && tries < 200;)
            {
                BYTE *r = WintunReceivePacket(s, &size);
                if (!r)
                {
                    CHECK(GetLastError() == ERROR_NO_MORE_ITEMS, "receive: error %u", GetLastError());
                    if (!wait_event(ev, 50))
                        tries++;
                    continue;
                }
                /* An echo reply to 198.18.7.8 with our sequence number. */
                if (size == sizes[k] && r[9] == 1 && r[20] == 0 && r[19] == 8 && r[26] == 0 && r[27] == k)
                {
                    got = true;
                    CHECK(checksum(r + 20, size - 20) == 0, "reply's ICMP checksum is wrong");
                }
                WintunReleaseReceivePacket(s, r);
            }
            CHECK(got, "no echo reply of %zu bytes", sizes[k]);
        }
    }
    WintunReleaseReceivePacket(s, outside);
    CHECK(GetLastError() == ERROR_INVALID_PARAMETER, "releasing a foreign packet: error %u", GetLastError());

    /* End of session wakes a poller; the handles go stale. */
    struct poller pl = { .ev = ev };
    atomic_init(&pl.woke, 0);
    pthread_t t;
    while (wait_event(ev, 0)) /* reset the event first */
        ;
    pthread_create(&t, NULL, poll_thread, &pl);
    usleep(100000);
    WintunEndSession(s);
    pthread_join(t, NULL);
    CHECK(atomic_load(&pl.woke), "EndSession did not wake a thread polling the read-wait event");
    CHECK_ERR(WintunReceivePacket(s, &size), ERROR_INVALID_HANDLE);
    CHECK_ERR(WintunAllocateSendPacket(s, 28), ERROR_INVALID_HANDLE);
    CHECK_ERR(WintunGetReadWaitEvent(s), ERROR_INVALID_HANDLE);
    CHECK(RingtunEventFd(ev) == -1 && GetLastError() == ERROR_INVALID_HANDLE, "a stale event still has an fd");
    WintunEndSession(s);
    CHECK(GetLastError() == ERROR_INVALID_HANDLE, "ending a session twice: error %u", GetLastError());

    /* A new session on the same adapter; closing the adapter ends it. */
    WINTUN_SESSION_HANDLE s2 = WintunStartSession(a, WINTUN_MIN_RING_CAPACITY * 2);
    CHECK(s2, "second session after the first ended: error %u", GetLastError());
    CHECK(s2 != s, "a new session reuses the old handle value");
    WintunCloseAdapter(a);
    CHECK_ERR(WintunReceivePacket(s2, &size), ERROR_INVALID_HANDLE);
    CHECK(if_nametoindex("rtc0") == 0, "rtc0 left behind");
}

/* A terminated ring: the adapter deleted under the session gives
 * ERROR_HANDLE_EOF, and the waiting thread wakes. */
static void test_eof(void)
{
    WCHAR name[16], type[16];
    u16(name, "rtc2"), u16(type, "CTest");
    WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(name, type, NULL);
    CHECK(a, "create rtc2: error %u", GetLastError());
    if (!a)
        return;
    WINTUN_SESSION_HANDLE s = WintunStartSession(a, WINTUN_MIN_RING_CAPACITY);
    CHECK(s, "start: error %u", GetLastError());
    if (!s)
    {
        WintunCloseAdapter(a);
        return;
    }
    run("ip link delete rtc2");
    DWORD size;
    bool eof = false;
    for (int i = 0; i < 100 && !eof; i++)
    {
        if (!WintunReceivePacket(s, &size) && GetLastError() == ERROR_HANDLE_EOF)
            eof = true;
        else
            wait_event(WintunGetReadWaitEvent(s), 50);
    }
    CHECK(eof, "no ERROR_HANDLE_EOF after the adapter was deleted: error %u", GetLastError());
    CHECK_ERR(WintunAllocateSendPacket(s, 28), ERROR_HANDLE_EOF);
    WintunEndSession(s);
    WintunCloseAdapter(a);
}

/* A driver that breaks the ring protocol: the session says
 * ERROR_INVALID_DATA and stays that way, and ends cleanly. The test plays
 * the hostile driver by setting the released bit of a record it received,
 * which only the application may set. */
static void test_corrupt(void)
{
    WCHAR name[16], type[16];
    u16(name, "rtc7"), u16(type, "CTest");
    WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(name, type, NULL);
    WINTUN_SESSION_HANDLE s = a ? WintunStartSession(a, WINTUN_MIN_RING_CAPACITY) : NULL;
    CHECK(s, "session on rtc7: error %u", GetLastError());
    if (!s)
    {
        WintunCloseAdapter(a);
        return;
    }
    run("ip addr add 198.18.9.7/24 dev rtc7 && ip link set rtc7 up");
    BYTE *p = WintunAllocateSendPacket(s, 28);
    if (p)
    {
        make_echo(p, 28, 1);
        memcpy(p + 12, (BYTE[]){ 198, 18, 9, 8 }, 4), memcpy(p + 16, (BYTE[]){ 198, 18, 9, 7 }, 4);
        p[10] = p[11] = 0;
        uint16_t c = checksum(p, 20);
        p[10] = (BYTE)(c >> 8), p[11] = (BYTE)c;
        WintunSendPacket(s, p);
    }
    HANDLE ev = WintunGetReadWaitEvent(s);
    DWORD size = 0;
    BYTE *r = NULL;
    for (int i = 0; i < 100 && !(r = WintunReceivePacket(s, &size)); i++)
        wait_event(ev, 50);
    CHECK(r, "no packet to corrupt: error %u", GetLastError());
    if (r)
    {
        uint32_t word;
        memcpy(&word, r - 4, 4);
        word |= 0x80000000u;
        memcpy(r - 4, &word, 4);
        WintunReleaseReceivePacket(s, r);
        CHECK_ERR(WintunReceivePacket(s, &size), ERROR_INVALID_DATA);
        CHECK_ERR(WintunReceivePacket(s, &size), ERROR_INVALID_DATA);
    }
    WintunEndSession(s);
    WintunCloseAdapter(a);
}

/* Through ringtund, what the policy does not allow is ERROR_ACCESS_DENIED. */
static void test_denied(void)
{
    WCHAR name[16], type[16];
    u16(name, "rtc8"), u16(type, "NotInThePolicy");
    CHECK_ERR(WintunCreateAdapter(name, type, NULL), ERROR_ACCESS_DENIED);
}

/* The logger may be replaced and cleared while other threads log. */
static atomic_int churn_stop;

static void *churn(void *arg)
{
    const char *n = (const char *)arg;
    WCHAR name[16], type[16];
    u16(name, n), u16(type, "CTest");
    while (!atomic_load(&churn_stop))
    {
        WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(name, type, NULL);
        if (!a)
            continue;
        WINTUN_SESSION_HANDLE s = WintunStartSession(a, WINTUN_MIN_RING_CAPACITY);
        if (s)
            WintunEndSession(s);
        WintunCloseAdapter(a);
    }
    return NULL;
}

static void test_logger_swaps(void)
{
    pthread_t t[2];
    pthread_create(&t[0], NULL, churn, (void *)"rtc3");
    pthread_create(&t[1], NULL, churn, (void *)"rtc4");
    for (int i = 0; i < 300; i++)
    {
        WintunSetLogger(i % 3 == 0 ? test_logger : i % 3 == 1 ? other_logger : NULL);
        usleep(1000);
    }
    atomic_store(&churn_stop, 1);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    WintunSetLogger(test_logger);
    CHECK(atomic_load(&other_logger_calls) > 0, "the replacement logger was never called");
}

static void test_delete_driver(void)
{
    WCHAR name[16], type[16];
    u16(name, "rtc5"), u16(type, "CTest");
    WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(name, type, NULL);
    CHECK(a, "create rtc5: error %u", GetLastError());
    u16(name, "rtc6");
    WINTUN_ADAPTER_HANDLE b = WintunCreateAdapter(name, type, NULL);
    WINTUN_SESSION_HANDLE s = b ? WintunStartSession(b, WINTUN_MIN_RING_CAPACITY) : NULL;
    CHECK(s, "session on rtc6: error %u", GetLastError());
    CHECK(WintunDeleteDriver(), "WintunDeleteDriver: error %u", GetLastError());
    CHECK(if_nametoindex("rtc5") == 0, "WintunDeleteDriver left rtc5, which had no session");
    CHECK(if_nametoindex("rtc6") != 0, "WintunDeleteDriver deleted rtc6, which has a session");
    if (s)
        WintunEndSession(s);
    WintunCloseAdapter(a);
    WintunCloseAdapter(b);
}

/* The library installs no handler for the signals a program handles
 * itself (it never calls signal.Notify); the Go runtime's own handlers for
 * synchronous signals and SIGPIPE are Go's c-shared rules. */
static void test_signals_untouched(const char *when)
{
    int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGCHLD };
    for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
    {
        struct sigaction sa;
        sigaction(sigs[i], NULL, &sa);
        CHECK(sa.sa_handler == SIG_DFL, "%s: signal %d has a handler the program did not install", when, sigs[i]);
    }
}

int main(void)
{
    bool root = geteuid() == 0;
    test_signals_untouched("after loading");
    WintunSetLogger(test_logger);
    test_names();
    test_adapter();
    test_session(root);
    if (root)
    {
        test_eof();
        test_corrupt();
    }
    else
        test_denied();
    test_logger_swaps();
    if (root)
        test_delete_driver();
    pthread_mutex_lock(&log_mu);
    CHECK(log_count > 0, "the logger got no message");
    CHECK(log_bad_time == 0, "%d log messages had a timestamp more than a second off", log_bad_time);
    CHECK(log_bad_utf16 == 0, "%d log messages were not valid UTF-16", log_bad_utf16);
    pthread_mutex_unlock(&log_mu);
    WintunSetLogger(NULL);
    test_signals_untouched("after every call");
    if (failures)
    {
        fprintf(stderr, "capi_test: %d checks failed\n", failures);
        return 1;
    }
    printf("capi_test: all checks passed (%d log messages)\n", log_count);
    return 0;
}
