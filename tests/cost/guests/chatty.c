/* Host-call-heavy: CALLS (argv[1]) rounds of a short sleep (SLEEP_US, argv[2],
   through poll_oneoff) and a small write to stdout (fd_write): its time is
   mostly spent waiting in host calls, not computing. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv) {
    unsigned calls = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 10) : 20;
    unsigned long us = argc > 2 ? strtoul(argv[2], NULL, 10) : 1000;
    struct timespec ts = {(time_t)(us / 1000000), (long)(us % 1000000) * 1000};
    char line[32];
    for (unsigned i = 0; i < calls; i++) {
        nanosleep(&ts, NULL);
        int len = snprintf(line, sizeof line, "tick %u\n", i);
        write(1, line, (size_t)len);
    }
    return 0;
}
