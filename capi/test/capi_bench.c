/* capi_bench: the four per-packet calls from C, in records per second.
 * One thread allocates and sends ICMP echo requests of SIZE bytes from
 * 198.18.7.8 to the adapter's 198.18.7.7, the other receives and releases
 * the host's replies; at most WINDOW requests are in flight, so the host
 * never drops. capi/test/echobench does the same with the Go API's
 * per-packet calls. Root, in a network namespace of its own:
 *
 *     unshare --net build/amd64/capi_bench SIZE SECONDS
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "echo.h"
#include "wintun.h"

#define WINDOW 256

static WINTUN_SESSION_HANDLE session;
static atomic_long sent, received;
/* Nanoseconds spent inside the calls: allocate+send, receive+release. */
static atomic_long send_ns, recv_ns, recv_calls;

static long ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long)t.tv_sec * 1000000000L + t.tv_nsec;
}
static atomic_int stop;
static size_t size;


/* The sender, when WINDOW requests are in flight, waits on a condition
 * variable the receiver signals once half of them have come back; the
 * receiver spins on an empty ring a while (Wintun's
 * advice under load) before it waits for the read-wait event. echobench
 * waits the same ways. */
static pthread_mutex_t window_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t window_cond = PTHREAD_COND_INITIALIZER;
static atomic_int sender_waiting;

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static void wait_window(void)
{
    pthread_mutex_lock(&window_mu);
    atomic_store(&sender_waiting, 1);
    while (!atomic_load(&stop) && atomic_load(&sent) - atomic_load(&received) > WINDOW / 2)
    {
        struct timespec t;
        clock_gettime(CLOCK_REALTIME, &t);
        t.tv_nsec += 10000000;
        if (t.tv_nsec >= 1000000000)
            t.tv_sec++, t.tv_nsec -= 1000000000;
        pthread_cond_timedwait(&window_cond, &window_mu, &t);
    }
    atomic_store(&sender_waiting, 0);
    pthread_mutex_unlock(&window_mu);
}

static void window_opened(void)
{
    if (atomic_load(&sender_waiting) && atomic_load(&sent) - atomic_load(&received) <= WINDOW / 2)
    {
        pthread_mutex_lock(&window_mu);
        pthread_cond_signal(&window_cond);
        pthread_mutex_unlock(&window_mu);
    }
}

static void *sender(void *arg)
{
    const BYTE *tmpl = (const BYTE *)arg;
    while (!atomic_load(&stop))
    {
        if (atomic_load(&sent) - atomic_load(&received) >= WINDOW)
        {
            wait_window();
            continue;
        }
        long t0 = ns();
        BYTE *p = WintunAllocateSendPacket(session, (DWORD)size);
        if (!p)
        {
            sched_yield(); /* the ring is full: cannot happen with this window */
            continue;
        }
        memcpy(p, tmpl, size);
        WintunSendPacket(session, p);
        atomic_fetch_add(&send_ns, ns() - t0);
        atomic_fetch_add(&sent, 1);
    }
    return NULL;
}

static void *receiver(void *arg)
{
    (void)arg;
    struct pollfd pfd = { .fd = RingtunEventFd(WintunGetReadWaitEvent(session)), .events = POLLIN };
    int empty = 0;
    while (!atomic_load(&stop))
    {
        DWORD n;
        long t0 = ns();
        BYTE *p = WintunReceivePacket(session, &n);
        if (!p)
        {
            /* Wintun's advice: spin on an empty ring a while under load,
             * then wait for the event. */
            if (++empty < 16)
            {
                cpu_relax();
                continue;
            }
            empty = 0;
            if (poll(&pfd, 1, 10) == 1)
            {
                uint64_t v;
                if (read(pfd.fd, &v, sizeof(v)) < 0)
                    break;
            }
            continue;
        }
        empty = 0;
        bool echo = n == size && p[9] == 1 && p[20] == 0;
        WintunReleaseReceivePacket(session, p);
        atomic_fetch_add(&recv_ns, ns() - t0);
        atomic_fetch_add(&recv_calls, 1);
        if (echo)
        {
            atomic_fetch_add(&received, 1);
            window_opened();
        }
    }
    return NULL;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    size = argc > 1 ? (size_t)atoi(argv[1]) : 64;
    double seconds = argc > 2 ? atof(argv[2]) : 3;
    if (size < 28 || size > 1500)
        return fprintf(stderr, "usage: capi_bench SIZE(28..1500) SECONDS\n"), 2;
    WINTUN_ADAPTER_HANDLE a = WintunCreateAdapter(u"rtb0", u"Bench", NULL);
    if (!a)
        return fprintf(stderr, "create: error %u\n", GetLastError()), 1;
    if (system("ip addr add 198.18.7.7/24 dev rtb0 && ip link set rtb0 up") != 0)
        return 1;
    session = WintunStartSession(a, 0x400000);
    if (!session)
        return fprintf(stderr, "start: error %u\n", GetLastError()), 1;
    static BYTE tmpl[1500];
    make_echo(tmpl, size, 0);
    pthread_t t[2];
    pthread_create(&t[0], NULL, receiver, NULL);
    pthread_create(&t[1], NULL, sender, tmpl);
    usleep(500000); /* warm up */
    long r0 = atomic_load(&received), s0 = atomic_load(&sent), sn0 = atomic_load(&send_ns),
         rn0 = atomic_load(&recv_ns), rc0 = atomic_load(&recv_calls);
    double t0 = now();
    usleep((useconds_t)(seconds * 1e6));
    long r1 = atomic_load(&received), s1 = atomic_load(&sent), sn1 = atomic_load(&send_ns),
         rn1 = atomic_load(&recv_ns), rc1 = atomic_load(&recv_calls);
    double t1 = now();
    atomic_store(&stop, 1);
    pthread_mutex_lock(&window_mu);
    pthread_cond_signal(&window_cond);
    pthread_mutex_unlock(&window_mu);
    pthread_join(t[0], NULL);
    pthread_join(t[1], NULL);
    WintunEndSession(session);
    WintunCloseAdapter(a);
    printf("C  %4zu B: %.0f records/s each way; in the calls: allocate+send %.0f ns, receive+release %.0f ns\n",
           size, (double)(r1 - r0) / (t1 - t0), (double)(sn1 - sn0) / (double)(s1 - s0),
           (double)(rn1 - rn0) / (double)(rc1 - rc0));
    return 0;
}
