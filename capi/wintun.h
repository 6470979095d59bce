/* wintun.h for libringtun: Wintun's C API on Linux.
 *
 * The same 14 functions, types, constants and error codes as WireGuard's
 * wintun.h (0.14), so that a Wintun program ports with few changes. What
 * differs, and why:
 *
 *   - Strings are UTF-16 as on Windows: WCHAR is char16_t, so literals are
 *     written u"Demo" (L"Demo" is 32-bit on Linux). Invalid UTF-16 fails
 *     with ERROR_NO_UNICODE_TRANSLATION.
 *   - Adapter names are Linux interface names: at most 15 bytes of UTF-8,
 *     no '/', ':', '%' or white space (ERROR_INVALID_NAME). Names of
 *     WINTUN_MAX_ADAPTER_NAME characters or more fail with
 *     ERROR_BUFFER_OVERFLOW, tunnel types of WINTUN_MAX_POOL or more too.
 *   - The last error is per thread, read with RingtunGetLastError(), or
 *     GetLastError() unless RINGTUN_NO_WIN32_NAMES is defined.
 *   - The read-wait event is a HANDLE whose file descriptor (an eventfd)
 *     RingtunEventFd() gives. Wait for it with poll() and read its 8 bytes
 *     to reset it, as Windows resets an auto-reset event:
 *
 *         struct pollfd p = { .fd = RingtunEventFd(WintunGetReadWaitEvent(s)),
 *                             .events = POLLIN };
 *         if (poll(&p, 1, -1) == 1) { uint64_t n; (void)read(p.fd, &n, 8); }
 *
 *     WintunEndSession signals it, so a thread waiting on it wakes; do not
 *     close it or use it after WintunEndSession.
 *   - NET_LUID.Value is the interface index (Go's Adapter.LUID()).
 *   - WintunDeleteDriver deletes every ringtun adapter without a session
 *     (Go's ringtun.Uninstall); there is no driver to remove.
 *   - Addresses and routes are set with ip(8) or the Go API's Configure,
 *     not iphlpapi.
 *   - Unprivileged programs get their adapters through ringtund, like Go
 *     programs (RINGTUN_DAEMON, see the Go package's documentation).
 *
 * Link with -lringtun (pkg-config ringtun), or dlopen("libringtun.so").
 */
#ifndef RINGTUN_WINTUN_H
#define RINGTUN_WINTUN_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Windows-width types. */
#ifndef RINGTUN_NO_WIN32_TYPES
typedef uint8_t BYTE;
typedef uint16_t WORD;
typedef uint32_t DWORD;
typedef uint64_t DWORD64;
typedef int BOOL;
#    define VOID void
typedef void *HANDLE;
#    ifdef __cplusplus
typedef char16_t WCHAR;
#    else
typedef uint_least16_t WCHAR; /* char16_t's type in C11's <uchar.h> */
#    endif
typedef const WCHAR *LPCWSTR;
#    ifndef TRUE
#        define TRUE 1
#        define FALSE 0
#    endif

typedef struct
{
    DWORD Data1;
    WORD Data2;
    WORD Data3;
    BYTE Data4[8];
} GUID;

typedef union
{
    uint64_t Value;
    struct
    {
        uint64_t Reserved : 24;
        uint64_t NetLuidIndex : 24;
        uint64_t IfType : 16;
    } Info;
} NET_LUID;
#endif

/* The Windows error codes libringtun sets. */
#define ERROR_SUCCESS 0
#define ERROR_FILE_NOT_FOUND 2
#define ERROR_TOO_MANY_OPEN_FILES 4
#define ERROR_ACCESS_DENIED 5
#define ERROR_INVALID_HANDLE 6
#define ERROR_NOT_ENOUGH_MEMORY 8
#define ERROR_INVALID_DATA 13
#define ERROR_GEN_FAILURE 31
#define ERROR_HANDLE_EOF 38
#define ERROR_NOT_SUPPORTED 50
#define ERROR_INVALID_PARAMETER 87
#define ERROR_BUFFER_OVERFLOW 111
#define ERROR_INVALID_NAME 123
#define ERROR_ALREADY_EXISTS 183
#define ERROR_NO_MORE_ITEMS 259
#define ERROR_ALREADY_INITIALIZED 1247
#define ERROR_NO_UNICODE_TRANSLATION 1113
#define ERROR_OBJECT_ALREADY_EXISTS 5010

/* Name limits, in UTF-16 code units including the terminating zero. */
#define WINTUN_MAX_ADAPTER_NAME 128
#define WINTUN_MAX_POOL 256

typedef struct _WINTUN_ADAPTER *WINTUN_ADAPTER_HANDLE;

/* Creates an adapter named Name in tunnel type TunnelType, with
 * RequestedGUID or a random GUID. NULL on failure (GetLastError):
 * ERROR_ALREADY_EXISTS, ERROR_INVALID_NAME, ERROR_ACCESS_DENIED, ... */
typedef WINTUN_ADAPTER_HANDLE(WINTUN_CREATE_ADAPTER_FUNC)(LPCWSTR Name, LPCWSTR TunnelType, const GUID *RequestedGUID);

/* Opens an existing adapter. NULL on failure: ERROR_FILE_NOT_FOUND, ... */
typedef WINTUN_ADAPTER_HANDLE(WINTUN_OPEN_ADAPTER_FUNC)(LPCWSTR Name);

/* Closes the handle (ending its session); deletes the adapter if this
 * handle created it. NULL is allowed. */
typedef VOID(WINTUN_CLOSE_ADAPTER_FUNC)(WINTUN_ADAPTER_HANDLE Adapter);

/* Deletes every ringtun adapter without a session. FALSE on failure. */
typedef BOOL(WINTUN_DELETE_DRIVER_FUNC)(VOID);

/* The adapter's LUID: Value is the interface index. */
typedef VOID(WINTUN_GET_ADAPTER_LUID_FUNC)(WINTUN_ADAPTER_HANDLE Adapter, NET_LUID *Luid);

/* (major << 16) | minor of what manages adapters; 0 on failure. */
typedef DWORD(WINTUN_GET_RUNNING_DRIVER_VERSION_FUNC)(VOID);

typedef enum
{
    WINTUN_LOG_INFO,
    WINTUN_LOG_WARN,
    WINTUN_LOG_ERR
} WINTUN_LOGGER_LEVEL;

/* Timestamp is in 100 ns units since 1601-01-01 UTC (a FILETIME). The
 * callback may run on any thread, several at once. */
typedef VOID (*WINTUN_LOGGER_CALLBACK)(WINTUN_LOGGER_LEVEL Level, DWORD64 Timestamp, LPCWSTR Message);

/* Sets, replaces or (NULL) clears the logger, at any time. */
typedef VOID(WINTUN_SET_LOGGER_FUNC)(WINTUN_LOGGER_CALLBACK NewLogger);

#define WINTUN_MIN_RING_CAPACITY 0x20000   /* 128 KiB */
#define WINTUN_MAX_RING_CAPACITY 0x4000000 /* 64 MiB */

typedef struct _TUN_SESSION *WINTUN_SESSION_HANDLE;

/* Starts the adapter's one session with two rings of Capacity bytes (a
 * power of two). NULL on failure: ERROR_ALREADY_INITIALIZED,
 * ERROR_INVALID_PARAMETER, ... */
typedef WINTUN_SESSION_HANDLE(WINTUN_START_SESSION_FUNC)(WINTUN_ADAPTER_HANDLE Adapter, DWORD Capacity);

/* Ends the session and wakes a thread waiting on its read-wait event.
 * Packets received or allocated must not be used afterwards. */
typedef VOID(WINTUN_END_SESSION_FUNC)(WINTUN_SESSION_HANDLE Session);

/* The read-wait event; see RingtunEventFd. NULL on failure. */
typedef HANDLE(WINTUN_GET_READ_WAIT_EVENT_FUNC)(WINTUN_SESSION_HANDLE Session);

#define WINTUN_MAX_IP_PACKET_SIZE 0xFFFF

/* The next packet, or NULL: ERROR_NO_MORE_ITEMS (wait on the read-wait
 * event), ERROR_HANDLE_EOF (the session ended), ERROR_INVALID_DATA. */
typedef BYTE *(WINTUN_RECEIVE_PACKET_FUNC)(WINTUN_SESSION_HANDLE Session, DWORD *PacketSize);

/* Gives a received packet back; in any order. */
typedef VOID(WINTUN_RELEASE_RECEIVE_PACKET_FUNC)(WINTUN_SESSION_HANDLE Session, const BYTE *Packet);

/* Room for a packet of PacketSize bytes, or NULL: ERROR_BUFFER_OVERFLOW
 * (ring full: drop the packet), ERROR_HANDLE_EOF,
 * ERROR_INVALID_PARAMETER. */
typedef BYTE *(WINTUN_ALLOCATE_SEND_PACKET_FUNC)(WINTUN_SESSION_HANDLE Session, DWORD PacketSize);

/* Sends an allocated packet; the host gets packets in allocation order. */
typedef VOID(WINTUN_SEND_PACKET_FUNC)(WINTUN_SESSION_HANDLE Session, const BYTE *Packet);

#ifndef RINGTUN_NO_PROTOTYPES
WINTUN_CREATE_ADAPTER_FUNC WintunCreateAdapter;
WINTUN_OPEN_ADAPTER_FUNC WintunOpenAdapter;
WINTUN_CLOSE_ADAPTER_FUNC WintunCloseAdapter;
WINTUN_DELETE_DRIVER_FUNC WintunDeleteDriver;
WINTUN_GET_ADAPTER_LUID_FUNC WintunGetAdapterLUID;
WINTUN_GET_RUNNING_DRIVER_VERSION_FUNC WintunGetRunningDriverVersion;
WINTUN_SET_LOGGER_FUNC WintunSetLogger;
WINTUN_START_SESSION_FUNC WintunStartSession;
WINTUN_END_SESSION_FUNC WintunEndSession;
WINTUN_GET_READ_WAIT_EVENT_FUNC WintunGetReadWaitEvent;
WINTUN_RECEIVE_PACKET_FUNC WintunReceivePacket;
WINTUN_RELEASE_RECEIVE_PACKET_FUNC WintunReleaseReceivePacket;
WINTUN_ALLOCATE_SEND_PACKET_FUNC WintunAllocateSendPacket;
WINTUN_SEND_PACKET_FUNC WintunSendPacket;
#endif

/* ringtun's additions. */

/* The calling thread's last error: what Windows' GetLastError returns. */
typedef DWORD(RINGTUN_GET_LAST_ERROR_FUNC)(VOID);
/* The pollable file descriptor of a read-wait event; -1 and
 * ERROR_INVALID_HANDLE for anything else. */
typedef int(RINGTUN_EVENT_FD_FUNC)(HANDLE Event);

#ifndef RINGTUN_NO_PROTOTYPES
RINGTUN_GET_LAST_ERROR_FUNC RingtunGetLastError;
RINGTUN_EVENT_FD_FUNC RingtunEventFd;
#endif

#if !defined(RINGTUN_NO_WIN32_NAMES) && !defined(RINGTUN_NO_PROTOTYPES)
static inline DWORD GetLastError(void) { return RingtunGetLastError(); }
#endif

#ifdef __cplusplus
}
#endif

#endif /* RINGTUN_WINTUN_H */
