// Raw-syscall reference for the Raft bench: the round trip of a 32-byte message between two
// threads over loopback TCP (127.0.0.80, TCP_NODELAY) with blocking reads, the least a node-RPC
// round trip (`raft/rpc_roundtrip`) can cost on this machine.
//
//   cc -O2 -pthread -o /tmp/loopback_rtt bench/probes/loopback_rtt.c && /tmp/loopback_rtt
#include <arpa/inet.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define PORT 19999
#define MSG 32
#define ROUND_TRIPS 20000

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static struct sockaddr_in addr(void) {
    struct sockaddr_in s = {0};
    s.sin_family = AF_INET;
    s.sin_port = htons(PORT);
    inet_pton(AF_INET, "127.0.0.80", &s.sin_addr);
    return s;
}

static pthread_barrier_t listening;

static void *echo(void *arg) {
    (void)arg;
    int one = 1, l = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in s = addr();
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (bind(l, (void *)&s, sizeof s) || listen(l, 1)) { perror("listen"); exit(1); }
    pthread_barrier_wait(&listening);
    int c = accept(l, NULL, NULL);
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[MSG];
    while (read(c, b, MSG) == MSG) write(c, b, MSG);
    return NULL;
}

int main(void) {
    pthread_t t;
    pthread_barrier_init(&listening, NULL, 2);
    pthread_create(&t, NULL, echo, NULL);
    pthread_barrier_wait(&listening);
    int one = 1, c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in s = addr();
    if (connect(c, (void *)&s, sizeof s)) { perror("connect"); return 1; }
    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char b[MSG] = {0};
    for (int i = 0; i < 1000; i++) { write(c, b, MSG); read(c, b, MSG); } // warm up
    double t0 = now_us();
    for (int i = 0; i < ROUND_TRIPS; i++) { write(c, b, MSG); read(c, b, MSG); }
    printf("loopback TCP round trip, blocking threads: %.1f us\n", (now_us() - t0) / ROUND_TRIPS);
    return 0;
}
