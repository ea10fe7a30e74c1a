/*
 * dockyard-runtime: the compiled front door of the runc-compatible command.
 *
 * A Python interpreter costs ~10 ms before it does anything, so this client hands the
 * call to a resident server (server.py, which forks a warm worker per call) together with
 * its arguments, cwd, environment, umask, rlimits and stdin/stdout/stderr, relays signals
 * to the worker and exits with the worker's status.  Whenever the server is absent,
 * refuses the call ("F") or is not ours to use (not root, DOCKYARD_RUNTIME_SERVER=off),
 * it execs the Python command (PYTHON_COMMAND) with the same argv, so the result is the
 * same either way; a missing server is started in the background for the next call.
 *
 * Build: cc -O2 -DPYTHON_COMMAND='"/opt/dockyard/venv/bin/dockyard-runtime-py"' client.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef PYTHON_COMMAND
#error "build with -DPYTHON_COMMAND='\"/path/to/dockyard-runtime-py\"'"
#endif

#define DEFAULT_SOCKET "/run/dockyard-runtime-server/server.sock"
#define PROTOCOL "1"

extern char **environ;
static volatile sig_atomic_t worker;

static void direct(char **argv)
{
    execv(PYTHON_COMMAND, argv);
    fprintf(stderr, "dockyard-runtime: cannot run %s: %s\n", PYTHON_COMMAND, strerror(errno));
    exit(127);
}

static void start_server(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        if (fork() != 0)
            _exit(0);
        int null = open("/dev/null", O_RDWR);
        if (null >= 0) {
            dup2(null, 0);
            dup2(null, 1);
            dup2(null, 2);
        }
        for (int fd = 3; fd < 1024; fd++)
            close(fd);
        char *args[] = {PYTHON_COMMAND, "__server__", "serve", NULL};
        execv(PYTHON_COMMAND, args);
        _exit(127);
    }
    if (pid > 0)
        waitpid(pid, NULL, 0);
}

struct buf {
    char *data;
    size_t len, cap;
};

static int put(struct buf *b, const char *s)
{
    size_t n = strlen(s) + 1;
    if (b->len + n > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 8192);
        while (cap < b->len + n)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data)
            return -1;
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

static int put_long(struct buf *b, long long v)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", v);
    return put(b, text);
}

/* The request's fields after the length prefix; see server.py. */
static int build(struct buf *b, int argc, char **argv)
{
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    mode_t mask = umask(0);
    umask(mask);
    char octal[16];
    snprintf(octal, sizeof octal, "%o", (unsigned)mask);
    if (put(b, PROTOCOL) || put(b, cwd) || put(b, octal) || put_long(b, argc - 1))
        return -1;
    for (int i = 1; i < argc; i++)
        if (put(b, argv[i]))
            return -1;
    long long envc = 0;
    for (char **e = environ; *e; e++)
        envc++;
    if (put_long(b, envc))
        return -1;
    for (char **e = environ; *e; e++)
        if (put(b, *e))
            return -1;
    if (put_long(b, RLIMIT_NLIMITS))
        return -1;
    for (int r = 0; r < RLIMIT_NLIMITS; r++) {
        struct rlimit rl;
        char pair[64];
        if (getrlimit(r, &rl) < 0)
            return -1;
        long long cur = rl.rlim_cur == RLIM_INFINITY ? -1 : (long long)rl.rlim_cur;
        long long max = rl.rlim_max == RLIM_INFINITY ? -1 : (long long)rl.rlim_max;
        snprintf(pair, sizeof pair, "%lld:%lld", cur, max);
        if (put(b, pair))
            return -1;
    }
    return 0;
}

static int send_request(int sock, struct buf *b)
{
    uint32_t len = (uint32_t)b->len;
    unsigned char header[4] = {len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};
    struct iovec iov[2] = {{header, 4}, {b->data, b->len}};
    int fds[3] = {0, 1, 2};
    union {
        char buf[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = iov, .msg_iovlen = 2,
                         .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof fds);
    memcpy(CMSG_DATA(cmsg), fds, sizeof fds);
    ssize_t sent = sendmsg(sock, &msg, MSG_NOSIGNAL);
    if (sent < 0)
        return -1;
    size_t total = 4 + b->len, done = (size_t)sent;
    while (done < total) {
        const char *from = done < 4 ? (const char *)header + done : b->data + (done - 4);
        size_t left = done < 4 ? 4 - done : total - done;
        ssize_t n = send(sock, from, left, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        done += (size_t)n;
    }
    return 0;
}

static void forward(int sig)
{
    if (worker > 0)
        kill((pid_t)worker, sig);
}

static void relay_signals(void)
{
    static const int sigs[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward;
    sa.sa_flags = SA_RESTART;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

int main(int argc, char **argv)
{
    const char *path = getenv("DOCKYARD_RUNTIME_SERVER");
    if (path && strcmp(path, "off") == 0)
        direct(argv);
    if (!path || !*path)
        path = DEFAULT_SOCKET;
    if (geteuid() != 0)
        direct(argv);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof addr.sun_path)
        direct(argv);
    strcpy(addr.sun_path, path);
    for (int fd = 0; fd < 3; fd++)  /* a closed stdio slot gets /dev/null, as in a child */
        if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) < 0)
            direct(argv);
    int sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0)
        direct(argv);
    if (connect(sock, (struct sockaddr *)&addr, sizeof addr) < 0) {
        if (errno == ENOENT || errno == ECONNREFUSED)
            start_server();
        close(sock);
        direct(argv);
    }
    struct buf request = {0};
    if (build(&request, argc, argv) || send_request(sock, &request)) {
        close(sock);
        direct(argv);
    }
    free(request.data);

    char line[64];
    size_t have = 0;
    for (;;) {
        ssize_t n = read(sock, line + have, sizeof line - 1 - have);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        have += (size_t)n;
        char *nl;
        while ((nl = memchr(line, '\n', have))) {
            *nl = '\0';
            if (line[0] == 'F') {
                close(sock);
                direct(argv);
            } else if (line[0] == 'P') {
                worker = atoi(line + 1);
                relay_signals();
            } else if (line[0] == 'X') {
                exit(atoi(line + 1));
            }
            size_t used = (size_t)(nl - line) + 1;
            memmove(line, nl + 1, have - used);
            have -= used;
        }
        if (have == sizeof line - 1)
            break;  /* no line fits: not our server */
    }
    if (!worker) {  /* refused before forking: run it here */
        close(sock);
        direct(argv);
    }
    fprintf(stderr, "dockyard-runtime: lost the runtime server before the command ended\n");
    return 255;
}
