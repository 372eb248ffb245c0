// Raw-syscall reference for the Raft bench: N threads each write one 4 KiB block with
// O_DIRECT|O_DSYNC (in place, over 256 blocks), starting together — or the k-th one
// `stagger_us * k` later, as a leader and its two followers start their log writes — and
// report the median time from the first start to the first, second and last completion.
// A commit of a 3-controller group on one disk waits for the second of three.
//
//   cc -O2 -pthread -o /tmp/dsync_writers bench/probes/dsync_writers.c
//   /tmp/dsync_writers target/ 3 50      # dir, writers (1-3), stagger in µs
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ROUNDS 2000
#define WRITERS_MAX 3
#define BLOCK 4096

static int writers;
static double stagger_us;
static const char *dir;
static pthread_barrier_t bar;
static double start_at[ROUNDS];
static double done_at[WRITERS_MAX][ROUNDS];

static double now_us(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void *writer(void *arg) {
    long k = (long)arg;
    char path[512];
    snprintf(path, sizeof path, "%s/dsync-writer-%ld", dir, k);
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT | O_DSYNC, 0644);
    void *block;
    if (fd < 0 || posix_memalign(&block, BLOCK, BLOCK)) { perror(path); exit(1); }
    memset(block, 7, BLOCK);
    for (int i = 0; i < 256; i++) pwrite(fd, block, BLOCK, (off_t)i * BLOCK); // allocate
    for (int r = 0; r < ROUNDS; r++) {
        if (k == 0) start_at[r] = now_us();
        pthread_barrier_wait(&bar); // start_at[r] is set before anyone reads it
        while (now_us() < start_at[r] + stagger_us * k) {}
        if (pwrite(fd, block, BLOCK, (off_t)(r % 256) * BLOCK) != BLOCK) { perror("pwrite"); exit(1); }
        done_at[k][r] = now_us() - start_at[r];
        pthread_barrier_wait(&bar);
    }
    close(fd);
    unlink(path);
    return NULL;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv) {
    if (argc != 4) { fprintf(stderr, "usage: %s dir writers stagger_us\n", argv[0]); return 2; }
    dir = argv[1];
    writers = atoi(argv[2]);
    stagger_us = atof(argv[3]);
    if (writers < 1 || writers > WRITERS_MAX) { fprintf(stderr, "writers: 1-3\n"); return 2; }
    pthread_barrier_init(&bar, NULL, writers);
    pthread_t t[WRITERS_MAX];
    for (long k = 0; k < writers; k++) pthread_create(&t[k], NULL, writer, (void *)k);
    for (int k = 0; k < writers; k++) pthread_join(t[k], NULL);
    static double nth[WRITERS_MAX][ROUNDS];
    for (int r = 0; r < ROUNDS; r++) {
        double d[WRITERS_MAX];
        for (int k = 0; k < writers; k++) d[k] = done_at[k][r];
        qsort(d, writers, sizeof d[0], by_value);
        for (int k = 0; k < writers; k++) nth[k][r] = d[k];
    }
    printf("%d writers, stagger %.0f us: median completion", writers, stagger_us);
    for (int k = 0; k < writers; k++) {
        qsort(nth[k], ROUNDS, sizeof nth[k][0], by_value);
        printf(" %s %.0f us", k == 0 ? "first" : k == writers - 1 ? "last" : "second", nth[k][ROUNDS / 2]);
    }
    printf("\n");
    return 0;
}
