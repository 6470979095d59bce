// header_test: wintun.h compiles as C++17 with -Wall -Wextra -Werror, both
// ways a program uses it (linked, and looked up with dlsym), and its types
// have Windows' widths and layout.
#include "wintun.h"

#include <cstddef>
#include <cstdio>
#include <type_traits>

static_assert(sizeof(WCHAR) == 2, "WCHAR is UTF-16");
static_assert(std::is_same<WCHAR, char16_t>::value, "u\"\" literals are WCHAR strings");
static_assert(sizeof(DWORD) == 4 && sizeof(DWORD64) == 8 && sizeof(BOOL) == 4, "Windows widths");
static_assert(sizeof(GUID) == 16 && offsetof(GUID, Data4) == 8, "GUID layout");
static_assert(sizeof(NET_LUID) == 8, "NET_LUID layout");
static_assert(WINTUN_MIN_RING_CAPACITY == 0x20000 && WINTUN_MAX_RING_CAPACITY == 0x4000000, "ring limits");
static_assert(WINTUN_MAX_IP_PACKET_SIZE == 0xFFFF, "packet limit");
static_assert(ERROR_NO_MORE_ITEMS == 259 && ERROR_HANDLE_EOF == 38 && ERROR_BUFFER_OVERFLOW == 111 &&
                  ERROR_INVALID_DATA == 13 && ERROR_ALREADY_INITIALIZED == 1247 && ERROR_ACCESS_DENIED == 5 &&
                  ERROR_ALREADY_EXISTS == 183 && ERROR_FILE_NOT_FOUND == 2 && ERROR_INVALID_PARAMETER == 87 &&
                  ERROR_INVALID_HANDLE == 6,
              "Windows' error codes");

// The function typedefs match the functions, as dlsym users rely on.
static WINTUN_CREATE_ADAPTER_FUNC *create = WintunCreateAdapter;
static WINTUN_RECEIVE_PACKET_FUNC *receive = WintunReceivePacket;
static WINTUN_SEND_PACKET_FUNC *send = WintunSendPacket;
static WINTUN_SET_LOGGER_FUNC *set_logger = WintunSetLogger;

int main()
{
    // Calls with invalid handles: errors, never crashes, from C++ too.
    BYTE *p = receive(nullptr, nullptr);
    if (p || GetLastError() != ERROR_INVALID_HANDLE)
        return std::printf("receive(NULL) = %p, error %u\n", static_cast<void *>(p), GetLastError()), 1;
    send(reinterpret_cast<WINTUN_SESSION_HANDLE>(static_cast<uintptr_t>(0x2)), nullptr);
    if (GetLastError() != ERROR_INVALID_HANDLE)
        return std::printf("send to a stale handle: error %u\n", GetLastError()), 1;
    if (create(nullptr, u"x", nullptr) || GetLastError() != ERROR_INVALID_PARAMETER)
        return std::printf("create(NULL): error %u\n", GetLastError()), 1;
    set_logger(nullptr);
    std::printf("header_test: wintun.h as C++17: ok\n");
    return 0;
}
