/* Wintun's example.c (WireGuard's wintun/example/example.c) ported to
 * Linux and libringtun, with as few changes as the platform allows:
 *
 *   1. POSIX headers; RINGTUN_NO_PROTOTYPES because the functions are
 *      looked up at run time, as on Windows.
 *   2. dlopen("libringtun.so")/dlsym instead of LoadLibraryExW/
 *      GetProcAddress; GetLastError and the read-wait event's fd
 *      (RingtunGetLastError, RingtunEventFd) are looked up with the 14.
 *   3. Strings are char16_t (u"Demo"); the example's own log lines are
 *      UTF-8 (there is no wide printf for char16_t), and the logger
 *      converts the library's UTF-16 messages for the terminal.
 *   4. The quit event is an eventfd and Ctrl-C is a sigaction handler;
 *      waiting on several handles is poll().
 *   5. The address (198.18.7.7/24, a benchmarking range, instead of
 *      10.6.7.7) is set with ip(8) instead of iphlpapi; if the program is
 *      not root (an adapter through ringtund), it asks you to set it.
 *   6. Threads are pthreads.
 *   7. PrintPacket uses inet_ntop and prints the reply's round trip time;
 *      the request's log line names source and destination the right way
 *      round.
 *
 * Build and run (as root, or unprivileged with ringtund running):
 *
 *     make -C capi
 *     cc -o /tmp/example examples/wintun-c/example.c -Icapi -ldl -pthread
 *     LD_LIBRARY_PATH=capi/build/amd64 /tmp/example
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#define RINGTUN_NO_PROTOTYPES
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>
#include "wintun.h"

static WINTUN_CREATE_ADAPTER_FUNC *WintunCreateAdapter;
static WINTUN_CLOSE_ADAPTER_FUNC *WintunCloseAdapter;
static WINTUN_OPEN_ADAPTER_FUNC *WintunOpenAdapter;
static WINTUN_GET_ADAPTER_LUID_FUNC *WintunGetAdapterLUID;
static WINTUN_GET_RUNNING_DRIVER_VERSION_FUNC *WintunGetRunningDriverVersion;
static WINTUN_DELETE_DRIVER_FUNC *WintunDeleteDriver;
static WINTUN_SET_LOGGER_FUNC *WintunSetLogger;
static WINTUN_START_SESSION_FUNC *WintunStartSession;
static WINTUN_END_SESSION_FUNC *WintunEndSession;
static WINTUN_GET_READ_WAIT_EVENT_FUNC *WintunGetReadWaitEvent;
static WINTUN_RECEIVE_PACKET_FUNC *WintunReceivePacket;
static WINTUN_RELEASE_RECEIVE_PACKET_FUNC *WintunReleaseReceivePacket;
static WINTUN_ALLOCATE_SEND_PACKET_FUNC *WintunAllocateSendPacket;
static WINTUN_SEND_PACKET_FUNC *WintunSendPacket;
static RINGTUN_GET_LAST_ERROR_FUNC *GetLastError;
static RINGTUN_EVENT_FD_FUNC *RingtunEventFd;

static void *
InitializeWintun(void)
{
    void *Wintun = dlopen("libringtun.so", RTLD_NOW | RTLD_LOCAL);
    if (!Wintun)
        return NULL;
#define X(Name, Symbol) (Sym = dlsym(Wintun, Symbol), memcpy(&Name, &Sym, sizeof(Sym)), Sym == NULL)
    void *Sym;
    if (X(WintunCreateAdapter, "WintunCreateAdapter") || X(WintunCloseAdapter, "WintunCloseAdapter") ||
        X(WintunOpenAdapter, "WintunOpenAdapter") || X(WintunGetAdapterLUID, "WintunGetAdapterLUID") ||
        X(WintunGetRunningDriverVersion, "WintunGetRunningDriverVersion") ||
        X(WintunDeleteDriver, "WintunDeleteDriver") || X(WintunSetLogger, "WintunSetLogger") ||
        X(WintunStartSession, "WintunStartSession") || X(WintunEndSession, "WintunEndSession") ||
        X(WintunGetReadWaitEvent, "WintunGetReadWaitEvent") || X(WintunReceivePacket, "WintunReceivePacket") ||
        X(WintunReleaseReceivePacket, "WintunReleaseReceivePacket") ||
        X(WintunAllocateSendPacket, "WintunAllocateSendPacket") || X(WintunSendPacket, "WintunSendPacket") ||
        X(GetLastError, "RingtunGetLastError") || X(RingtunEventFd, "RingtunEventFd"))
#undef X
    {
        dlclose(Wintun);
        return NULL;
    }
    return Wintun;
}

/* Utf16ToUtf8 converts a log message for the terminal. */
static void
Utf16ToUtf8(const WCHAR *In, char *Out, size_t OutSize)
{
    size_t o = 0;
    for (; *In && o + 4 < OutSize; In++)
    {
        unsigned long c = *In;
        if (c >= 0xD800 && c <= 0xDBFF && In[1] >= 0xDC00 && In[1] <= 0xDFFF)
            c = 0x10000 + ((c - 0xD800) << 10) + (*++In - 0xDC00);
        if (c < 0x80)
            Out[o++] = (char)c;
        else if (c < 0x800)
            Out[o++] = (char)(0xC0 | c >> 6), Out[o++] = (char)(0x80 | (c & 0x3F));
        else if (c < 0x10000)
            Out[o++] = (char)(0xE0 | c >> 12), Out[o++] = (char)(0x80 | ((c >> 6) & 0x3F)),
            Out[o++] = (char)(0x80 | (c & 0x3F));
        else
            Out[o++] = (char)(0xF0 | c >> 18), Out[o++] = (char)(0x80 | ((c >> 12) & 0x3F)),
            Out[o++] = (char)(0x80 | ((c >> 6) & 0x3F)), Out[o++] = (char)(0x80 | (c & 0x3F));
    }
    Out[o] = 0;
}

static void
PrintLine(WINTUN_LOGGER_LEVEL Level, DWORD64 Timestamp, const char *LogLine)
{
    time_t Seconds = (time_t)(Timestamp / 10000000 - 11644473600LL);
    struct tm SystemTime;
    gmtime_r(&Seconds, &SystemTime);
    char LevelMarker;
    switch (Level)
    {
    case WINTUN_LOG_INFO:
        LevelMarker = '+';
        break;
    case WINTUN_LOG_WARN:
        LevelMarker = '-';
        break;
    case WINTUN_LOG_ERR:
        LevelMarker = '!';
        break;
    default:
        return;
    }
    fprintf(
        stderr,
        "%04d-%02d-%02d %02d:%02d:%02d.%04u [%c] %s\n",
        SystemTime.tm_year + 1900,
        SystemTime.tm_mon + 1,
        SystemTime.tm_mday,
        SystemTime.tm_hour,
        SystemTime.tm_min,
        SystemTime.tm_sec,
        (unsigned)(Timestamp / 10000 % 1000),
        LevelMarker,
        LogLine);
}

static void
ConsoleLogger(WINTUN_LOGGER_LEVEL Level, DWORD64 Timestamp, const WCHAR *LogLine)
{
    char Line[0x400];
    Utf16ToUtf8(LogLine, Line, sizeof(Line));
    PrintLine(Level, Timestamp, Line);
}

static DWORD64 Now(void)
{
    struct timespec Timestamp;
    clock_gettime(CLOCK_REALTIME, &Timestamp);
    return (DWORD64)Timestamp.tv_sec * 10000000 + (DWORD64)Timestamp.tv_nsec / 100 + 116444736000000000ULL;
}

static DWORD
LogError(const char *Prefix, DWORD Error)
{
    char FormattedMessage[0x200];
    snprintf(FormattedMessage, sizeof(FormattedMessage), "%s: Code 0x%08X", Prefix, Error);
    PrintLine(WINTUN_LOG_ERR, Now(), FormattedMessage);
    return Error;
}

static DWORD
LogLastError(const char *Prefix)
{
    DWORD LastError = GetLastError();
    LogError(Prefix, LastError);
    return LastError;
}

static void
Log(WINTUN_LOGGER_LEVEL Level, const char *Format, ...)
{
    char LogLine[0x200];
    va_list args;
    va_start(args, Format);
    vsnprintf(LogLine, sizeof(LogLine), Format, args);
    va_end(args);
    PrintLine(Level, Now(), LogLine);
}

static int QuitEvent = -1;
static volatile sig_atomic_t HaveQuit;

static void
CtrlHandler(int CtrlType)
{
    (void)CtrlType;
    static const char Message[] = "Cleaning up and shutting down...\n";
    ssize_t Ignored = write(STDERR_FILENO, Message, sizeof(Message) - 1);
    (void)Ignored;
    HaveQuit = 1;
    eventfd_write(QuitEvent, 1);
}

static DWORD64 SentAt[0x10000];

static void
PrintPacket(const BYTE *Packet, DWORD PacketSize)
{
    if (PacketSize < 20)
    {
        Log(WINTUN_LOG_INFO, "Received packet without room for an IP header");
        return;
    }
    BYTE IpVersion = Packet[0] >> 4, Proto;
    char Src[INET6_ADDRSTRLEN], Dst[INET6_ADDRSTRLEN];
    if (IpVersion == 4)
    {
        inet_ntop(AF_INET, &Packet[12], Src, sizeof(Src));
        inet_ntop(AF_INET, &Packet[16], Dst, sizeof(Dst));
        Proto = Packet[9];
        Packet += 20, PacketSize -= 20;
    }
    else if (IpVersion == 6 && PacketSize < 40)
    {
        Log(WINTUN_LOG_INFO, "Received packet without room for an IP header");
        return;
    }
    else if (IpVersion == 6)
    {
        inet_ntop(AF_INET6, &Packet[8], Src, sizeof(Src));
        inet_ntop(AF_INET6, &Packet[24], Dst, sizeof(Dst));
        Proto = Packet[6];
        Packet += 40, PacketSize -= 40;
    }
    else
    {
        Log(WINTUN_LOG_INFO, "Received packet that was not IP");
        return;
    }
    if (Proto == 1 && PacketSize >= 8 && Packet[0] == 0)
    {
        unsigned Seq = (unsigned)Packet[6] << 8 | Packet[7];
        Log(WINTUN_LOG_INFO, "Received IPv%d ICMP echo reply from %s to %s, seq %u, time %.3f ms", IpVersion, Src, Dst,
            Seq, (double)(Now() - SentAt[Seq]) / 10000);
    }
    else
        Log(WINTUN_LOG_INFO, "Received IPv%d proto 0x%x packet from %s to %s", IpVersion, Proto, Src, Dst);
}

static uint16_t
IPChecksum(const BYTE *Buffer, DWORD Len)
{
    uint32_t Sum = 0;
    for (; Len > 1; Len -= 2, Buffer += 2)
        Sum += (uint32_t)Buffer[0] | (uint32_t)Buffer[1] << 8; /* as Windows' *(USHORT *): little-endian */
    if (Len)
        Sum += *Buffer;
    Sum = (Sum >> 16) + (Sum & 0xffff);
    Sum += (Sum >> 16);
    return (uint16_t)(~Sum);
}

static void
PutU16(BYTE *At, uint16_t Value) /* *(USHORT *)&At = Value, without unaligned access */
{
    memcpy(At, &Value, sizeof(Value));
}

static void
MakeICMP(BYTE Packet[28], uint16_t Seq)
{
    memset(Packet, 0, 28);
    Packet[0] = 0x45;
    PutU16(&Packet[2], htons(28));
    Packet[8] = 255;
    Packet[9] = 1;
    uint32_t Src = htonl((198u << 24) | (18 << 16) | (7 << 8) | (8 << 0)); /* 198.18.7.8 */
    uint32_t Dst = htonl((198u << 24) | (18 << 16) | (7 << 8) | (7 << 0)); /* 198.18.7.7 */
    memcpy(&Packet[12], &Src, 4);
    memcpy(&Packet[16], &Dst, 4);
    PutU16(&Packet[10], IPChecksum(Packet, 20));
    Packet[20] = 8;
    PutU16(&Packet[26], htons(Seq));
    PutU16(&Packet[22], IPChecksum(&Packet[20], 8));
    SentAt[Seq] = Now();
    Log(WINTUN_LOG_INFO, "Sending IPv4 ICMP echo request from 198.18.7.8 to 198.18.7.7, seq %u", Seq);
}

static void *
ReceivePackets(void *SessionPtr)
{
    WINTUN_SESSION_HANDLE Session = (WINTUN_SESSION_HANDLE)SessionPtr;
    struct pollfd WaitHandles[] = { { RingtunEventFd(WintunGetReadWaitEvent(Session)), POLLIN, 0 },
                                    { QuitEvent, POLLIN, 0 } };

    while (!HaveQuit)
    {
        DWORD PacketSize;
        BYTE *Packet = WintunReceivePacket(Session, &PacketSize);
        if (Packet)
        {
            PrintPacket(Packet, PacketSize);
            WintunReleaseReceivePacket(Session, Packet);
        }
        else
        {
            DWORD LastError = GetLastError();
            switch (LastError)
            {
            case ERROR_NO_MORE_ITEMS:
                if (poll(WaitHandles, 2, -1) >= 0 && (WaitHandles[0].revents & POLLIN))
                {
                    eventfd_t Reset;
                    eventfd_read(WaitHandles[0].fd, &Reset);
                    continue;
                }
                if (errno == EINTR)
                    continue;
                return NULL;
            default:
                LogError("Packet read failed", LastError);
                return NULL;
            }
        }
    }
    return NULL;
}

static void *
SendPackets(void *SessionPtr)
{
    WINTUN_SESSION_HANDLE Session = (WINTUN_SESSION_HANDLE)SessionPtr;
    struct pollfd Quit = { QuitEvent, POLLIN, 0 };
    for (uint16_t Seq = 1; !HaveQuit; Seq++)
    {
        BYTE *Packet = WintunAllocateSendPacket(Session, 28);
        if (Packet)
        {
            MakeICMP(Packet, Seq);
            WintunSendPacket(Session, Packet);
        }
        else if (GetLastError() != ERROR_BUFFER_OVERFLOW)
        {
            LogLastError("Packet write failed");
            return NULL;
        }

        if (poll(&Quit, 1, 1000 /* 1 second */) != 0 && errno != EINTR)
            return NULL;
    }
    return NULL;
}

int
main(void)
{
    void *Wintun = InitializeWintun();
    if (!Wintun)
    {
        fprintf(stderr, "Failed to initialize Wintun: %s\n", dlerror());
        return 1;
    }
    WintunSetLogger(ConsoleLogger);
    Log(WINTUN_LOG_INFO, "Wintun library loaded");

    DWORD LastError;
    HaveQuit = 0;
    QuitEvent = eventfd(0, EFD_CLOEXEC);
    if (QuitEvent < 0)
    {
        LastError = LogError("Failed to create event", (DWORD)errno);
        goto cleanupWintun;
    }
    struct sigaction Handler;
    memset(&Handler, 0, sizeof(Handler));
    Handler.sa_handler = CtrlHandler;
    if (sigaction(SIGINT, &Handler, NULL) < 0 || sigaction(SIGTERM, &Handler, NULL) < 0)
    {
        LastError = LogError("Failed to set console handler", (DWORD)errno);
        goto cleanupQuit;
    }

    {
        GUID ExampleGuid = { 0xdeadbabe, 0xcafe, 0xbeef, { 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef } };
        WINTUN_ADAPTER_HANDLE Adapter = WintunCreateAdapter(u"Demo", u"Example", &ExampleGuid);
        if (!Adapter)
        {
            LastError = GetLastError();
            LogError("Failed to create adapter", LastError);
            goto cleanupQuit;
        }

        DWORD Version = WintunGetRunningDriverVersion();
        Log(WINTUN_LOG_INFO, "Wintun v%u.%u loaded", (Version >> 16) & 0xff, (Version >> 0) & 0xff);

        NET_LUID Luid;
        WintunGetAdapterLUID(Adapter, &Luid);
        if (geteuid() == 0)
        {
            if (system("ip addr add 198.18.7.7/24 dev Demo && ip link set Demo up") != 0)
            {
                LastError = LogError("Failed to set IP address", ERROR_GEN_FAILURE);
                goto cleanupAdapter;
            }
        }
        else
            Log(WINTUN_LOG_WARN, "Not root: set the address yourself: ip addr add 198.18.7.7/24 dev Demo && ip link "
                                 "set Demo up (interface index %llu)",
                (unsigned long long)Luid.Value);

        {
            WINTUN_SESSION_HANDLE Session = WintunStartSession(Adapter, 0x400000);
            if (!Session)
            {
                LastError = LogLastError("Failed to create adapter");
                goto cleanupAdapter;
            }

            Log(WINTUN_LOG_INFO, "Launching threads and mangling packets...");

            pthread_t Workers[2];
            int Started = 0;
            if (pthread_create(&Workers[0], NULL, ReceivePackets, Session) == 0)
                Started++;
            if (Started == 1 && pthread_create(&Workers[1], NULL, SendPackets, Session) == 0)
                Started++;
            if (Started < 2)
                LastError = LogError("Failed to create threads", ERROR_GEN_FAILURE);
            else
                LastError = ERROR_SUCCESS;

            HaveQuit = Started < 2 ? 1 : HaveQuit;
            if (Started < 2)
                eventfd_write(QuitEvent, 1);
            for (int i = 0; i < Started; ++i)
                pthread_join(Workers[i], NULL);
            WintunEndSession(Session);
        }
    cleanupAdapter:
        WintunCloseAdapter(Adapter);
    }
cleanupQuit:
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    close(QuitEvent);
cleanupWintun:
    dlclose(Wintun);
    return (int)LastError;
}
