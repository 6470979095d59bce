/* Internal to libringtun: what its Go half (capi.go) and C half
 * (ringtun.c) call across. Not installed. */
#ifndef RINGTUN_CAPI_H
#define RINGTUN_CAPI_H

#include <stddef.h>
#include <stdint.h>

/* A session's memory and wake-ups, as StartSharedSession made them. The
 * descriptors stay owned by Go; C duplicates what it keeps. */
struct rt_shared
{
    uintptr_t id; /* Go's session id, for rtGoEndSession */
    size_t size;  /* bytes of the memfd: both rings and the control block */
    int mem_fd;
    int read_fd;  /* the read-wait event: the driver signals it */
    int send_fd;  /* C signals it when the driver's writer sleeps */
    int space_fd; /* C signals it when the driver's reader waits for room */
};

/* Hands a Go log message (UTF-8, n bytes) to the program's logger. */
void rtLogUTF8(int level, uint64_t timestamp, const char *msg, size_t n);

#endif
