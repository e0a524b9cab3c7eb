/*
 * udpload.c: the UDP half of bench/announce.py's workload, a BEP 15 announce generator.
 *
 *   gcc -O2 -Wall -o udpload bench/kit/udpload.c -lm     (bench/announce.py does this)
 *   udpload -p 7071 -W 3 -d 10       3 s warm-up, then 10 s measured
 *   udpload -D -t 10000 > pool.txt   the info-hash pool, 40 hex digits a line, most popular first
 *
 * One thread keeps up to WINDOW announces in flight and sends the next ones as answers come
 * back: batches of 98-byte announces go out in one sendmsg with UDP GSO (sendmmsg where GSO is
 * missing), answers are read with recvmmsg. Each source address (127.0.0.1, 127.0.0.2, ...)
 * gets its own connection id, renewed every 60 s. A request unanswered after 0.25 s counts as
 * lost and its slot is reused. It only ever sends to a loopback address.
 *
 * The workload: HASHES info hashes picked with Zipf(1.0) popularity, PEERS peers picked
 * uniformly (peer_id "-UL0001-" + 12 digits, 10% of them seeders), events 85% none / 8%
 * started / 2% completed / 5% stopped, numwant 50. Peer i announces from source i % SOURCES
 * with port 1024 + (i / SOURCES) % 64512, so that each peer has an address of its own.
 *
 * Prints one line of key=value pairs when done (see report()).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

#define MAX_SOURCES   8
#define BATCH         64
#define SLOT_BITS     16
#define MAX_WINDOW    (1u << SLOT_BITS)
#define DATAGRAM_MAX  2048
#define ANNOUNCE_LEN  98
#define LATENCY_US    (1u << 20)        /* latency histogram: 1 us buckets up to ~1 s */
#define PORTS         64512u            /* peer ports 1024..65535 per source address */
#define PROTOCOL_ID   0x41727101980ULL

enum { CONNECT = 0, ANNOUNCE = 1, ERROR = 3 };

/* settings */
static const char *target = "127.0.0.1";
static int target_port = 6969;
static double measure_s = 10, warmup_s = 0, lost_after_s = 0.25, renew_s = 60.0;
static uint32_t n_hashes = 10000, n_peers = 100000, window = 256;
static double zipf = 1.0, seeder_share = 0.10;
static int32_t numwant = 50;
static uint64_t seed = 1;
static int use_gso = 1, dump_pool = 0;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* splitmix64: derives the pool and the peers from the seed */
static uint64_t mix(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* wyrand: the request stream */
static uint64_t stream;
static uint64_t next_random(void) {
    stream += 0xa0761d6478bd642full;
    __uint128_t t = (__uint128_t)stream * (stream ^ 0xe7037ed1a0b428dbull);
    return (uint64_t)(t >> 64) ^ (uint64_t)t;
}
static double uniform(void) { return (next_random() >> 11) * (1.0 / 9007199254740992.0); }
static uint32_t below(uint32_t n) { return (uint32_t)(((next_random() & 0xffffffffull) * n) >> 32); }

static void be32(uint8_t *p, uint32_t v) { v = htonl(v); memcpy(p, &v, 4); }
static void be64(uint8_t *p, uint64_t v) { be32(p, (uint32_t)(v >> 32)); be32(p + 4, (uint32_t)v); }
static void be16(uint8_t *p, uint16_t v) { v = htons(v); memcpy(p, &v, 2); }
static uint32_t read32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return ntohl(v); }

/* ---- the workload */

static uint8_t *pool;        /* n_hashes x 20 bytes, most popular first */
static double *popularity;   /* cumulative share of the ranks up to i */
static uint8_t *peer_ids;    /* n_peers x 20 bytes */
static uint32_t *peer_keys;

static void make_pool(void) {
    pool = malloc((size_t)n_hashes * 20);
    for (uint32_t i = 0; i < n_hashes; i++) {
        uint64_t state = seed * 0x100000001b3ull + i;
        uint64_t a = mix(&state), b = mix(&state), c = mix(&state);
        uint8_t *h = pool + (size_t)i * 20;
        memcpy(h, &a, 8);
        memcpy(h + 8, &b, 8);
        memcpy(h + 16, &c, 4);
    }
    popularity = malloc(sizeof(double) * n_hashes);
    double total = 0;
    for (uint32_t i = 0; i < n_hashes; i++) popularity[i] = (total += pow(i + 1.0, -zipf));
    for (uint32_t i = 0; i < n_hashes; i++) popularity[i] /= total;
    popularity[n_hashes - 1] = 1.0;
}

static const uint8_t *popular_hash(void) {
    double draw = uniform();
    uint32_t lo = 0, hi = n_hashes - 1;
    while (lo < hi) {
        uint32_t mid = (lo + hi) / 2;
        if (popularity[mid] < draw) lo = mid + 1; else hi = mid;
    }
    return pool + (size_t)lo * 20;
}

static void make_peers(void) {
    peer_ids = malloc((size_t)n_peers * 20);
    peer_keys = malloc(sizeof(uint32_t) * n_peers);
    for (uint32_t i = 0; i < n_peers; i++) {
        char id[21];
        snprintf(id, sizeof id, "-UL0001-%012u", i);
        memcpy(peer_ids + (size_t)i * 20, id, 20);
        uint64_t state = (seed << 32) ^ (0x5eedull + i);
        peer_keys[i] = (uint32_t)mix(&state);
    }
}

static int is_seeder(uint32_t peer) {
    uint64_t state = 0xabcdefull ^ peer;
    return mix(&state) % 1000 < (uint64_t)(seeder_share * 1000);
}

/* ---- sockets, connection ids, requests in flight */

struct source {
    int fd;
    uint8_t connection_id[8];
    int connected;           /* has an id: may announce */
    int connecting;          /* a connect request is out */
    uint32_t connect_tx;
    uint64_t connected_at, connect_sent, renewed_at;
};
struct slot { uint64_t sent; uint32_t tx; uint8_t busy, source; };

static struct source sources[MAX_SOURCES];
static int n_sources = 1, family = AF_INET, peer_size = 6;
static struct slot *slots;
static uint32_t *free_slots, n_free;
static uint32_t sequence = 1;

/* counted while measuring only */
static int measuring;
static uint64_t answers, announced, errors, mismatched, bad_size, lost, send_failed, sent,
    connects, answer_bytes, peers_returned, empty_answers;
static uint32_t *latency;
static uint64_t latency_over;
static char first_error[128];
static uint64_t ever_connected;

static void fail(const char *what) { perror(what); exit(2); }

static void usage(void) {
    fprintf(stderr,
        "usage: udpload [options]\n"
        "  -h ADDR  tracker address, loopback only (127.0.0.1; ::1 for IPv6)\n"
        "  -p PORT  tracker port (6969)\n"
        "  -d SEC   measured seconds (10)\n"
        "  -W SEC   warm-up seconds before measuring (0)\n"
        "  -t N     info hashes in the pool (10000)\n"
        "  -n N     peers (100000)\n"
        "  -w N     announces in flight at most (256)\n"
        "  -z S     Zipf exponent of hash popularity, 0 = uniform (1.0)\n"
        "  -m N     numwant (50; -1: the tracker's default)\n"
        "  -e FRAC  share of seeders (0.10)\n"
        "  -S SEED  seed of the pool, the peers and the request stream (1)\n"
        "  -G       no UDP GSO: plain sendmmsg\n"
        "  -D       print the info-hash pool (hex, one a line) and exit\n");
    exit(1);
}

static void send_connect(int s, uint64_t t) {
    uint8_t packet[16];
    uint32_t tx = (uint32_t)next_random();
    be64(packet, PROTOCOL_ID);
    be32(packet + 8, CONNECT);
    be32(packet + 12, tx);
    if (send(sources[s].fd, packet, sizeof packet, 0) == (ssize_t)sizeof packet) {
        sources[s].connecting = 1;
        sources[s].connect_tx = tx;
        sources[s].connect_sent = sources[s].renewed_at = t;
    }
}

static void release(uint32_t slot) { slots[slot].busy = 0; free_slots[n_free++] = slot; }

/* One announce into packet (ANNOUNCE_LEN bytes) in slot; its source, or -1 when no source
 * has a connection id yet. The transaction id carries the slot in its low bits. */
static int build_announce(uint8_t *packet, uint32_t slot, uint64_t t) {
    uint32_t peer = below(n_peers);
    int s = (int)(peer % (uint32_t)n_sources);
    if (!sources[s].connected) {   /* borrow a peer of a source that has an id */
        int k = 1;
        while (k < n_sources && !sources[(s + k) % n_sources].connected) k++;
        if (k == n_sources) return -1;
        s = (s + k) % n_sources;
        peer = peer - peer % (uint32_t)n_sources + (uint32_t)s;
        if (peer >= n_peers) peer = (uint32_t)s;
    }
    uint32_t tx = ((sequence++ & 0xffffu) << SLOT_BITS) | slot;
    slots[slot] = (struct slot){ .sent = t, .tx = tx, .busy = 1, .source = (uint8_t)s };
    uint32_t roll = below(100);
    uint32_t event = roll < 85 ? 0 : roll < 93 ? 2 : roll < 95 ? 1 : 3;  /* none, started,
                                                                           completed, stopped */
    uint64_t left = (is_seeder(peer) || event == 1) ? 0 : 1 + next_random() % (1ull << 30);
    memcpy(packet, sources[s].connection_id, 8);
    be32(packet + 8, ANNOUNCE);
    be32(packet + 12, tx);
    memcpy(packet + 16, popular_hash(), 20);
    memcpy(packet + 36, peer_ids + (size_t)peer * 20, 20);
    be64(packet + 56, left ? next_random() % (1ull << 30) : 1ull << 30);   /* downloaded */
    be64(packet + 64, left);
    be64(packet + 72, next_random() % (1ull << 28));                       /* uploaded */
    be32(packet + 80, event);
    be32(packet + 84, 0);                                                  /* ip: the source */
    be32(packet + 88, peer_keys[peer]);
    be32(packet + 92, (uint32_t)numwant);
    be16(packet + 96, (uint16_t)(1024 + (peer / (uint32_t)n_sources) % PORTS));
    return s;
}

static void keep_error(const uint8_t *text, size_t n) {
    if (first_error[0]) return;
    if (n > sizeof first_error - 1) n = sizeof first_error - 1;
    for (size_t i = 0; i < n; i++) first_error[i] = text[i] < 32 || text[i] > 126 ? '_' : text[i];
    first_error[n] = 0;
}

static void answered(int s, const uint8_t *data, ssize_t len, uint64_t t) {
    if (len < 8) { if (measuring) bad_size++; return; }
    uint32_t action = read32(data), tx = read32(data + 4);
    struct source *src = &sources[s];
    if (src->connecting && tx == src->connect_tx) {
        src->connecting = 0;   /* a refused connect is sent again by the main loop */
        if (action == CONNECT && len >= 16) {
            memcpy(src->connection_id, data + 8, 8);
            src->connected = 1;
            src->connected_at = t;
            ever_connected++;
            if (measuring) connects++;
        } else {
            if (action == ERROR) keep_error(data + 8, (size_t)(len - 8));
            if (measuring) errors++;
        }
        return;
    }
    uint32_t slot = tx & (MAX_WINDOW - 1);
    if (slot >= window || !slots[slot].busy || slots[slot].tx != tx || slots[slot].source != s) {
        if (measuring && action != CONNECT) mismatched++;   /* late, or lost and reused */
        return;
    }
    uint64_t us = (t - slots[slot].sent) / 1000;
    release(slot);
    if (action == ERROR && t - src->renewed_at > 1000000000ull)
        src->connected = 0;   /* perhaps an expired id: connect again, once a second at most */
    if (!measuring) return;
    answers++;
    if (us < LATENCY_US) latency[us]++; else latency_over++;
    if (action == ERROR) { errors++; keep_error(data + 8, (size_t)(len - 8)); return; }
    if (action != ANNOUNCE) { mismatched++; return; }
    if (len < 20 || (len - 20) % peer_size) { bad_size++; return; }
    uint64_t n = (uint64_t)(len - 20) / peer_size;
    announced++;
    answer_bytes += (uint64_t)len;
    peers_returned += n;
    if (!n) empty_answers++;
}

static uint64_t percentile(double p) {
    uint64_t total = answers, want = (uint64_t)ceil(p * (double)total), seen = 0;
    if (!total) return 0;
    if (!want) want = 1;
    for (uint32_t us = 0; us < LATENCY_US; us++)
        if ((seen += latency[us]) >= want) return us;
    return LATENCY_US;
}

static double cpu_seconds(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec
        + ru.ru_stime.tv_usec / 1e6;
}

static void report(double seconds, double cpu) {
    printf("answers=%llu rps=%.0f announced=%llu errors=%llu mismatches=%llu bad_size=%llu "
           "timeouts=%llu send_fail=%llu sent=%llu connects=%llu mean_resp_bytes=%.1f "
           "mean_peers=%.2f zero_peer_pct=%.1f p50_us=%llu p90_us=%llu p99_us=%llu "
           "p999_us=%llu over_1s=%llu gen_cpu_pct=%.0f gso=%d window=%u hashes=%u peers=%u "
           "sources=%d numwant=%d secs=%.2f",
           (unsigned long long)answers, answers / seconds, (unsigned long long)announced,
           (unsigned long long)errors, (unsigned long long)mismatched,
           (unsigned long long)bad_size, (unsigned long long)lost,
           (unsigned long long)send_failed, (unsigned long long)sent,
           (unsigned long long)connects, announced ? (double)answer_bytes / announced : 0.0,
           announced ? (double)peers_returned / announced : 0.0,
           announced ? 100.0 * empty_answers / announced : 0.0,
           (unsigned long long)percentile(0.50), (unsigned long long)percentile(0.90),
           (unsigned long long)percentile(0.99), (unsigned long long)percentile(0.999),
           (unsigned long long)latency_over, 100.0 * cpu / seconds, use_gso, window, n_hashes,
           n_peers, n_sources, numwant, seconds);
    if (first_error[0]) printf(" first_error=\"%s\"", first_error);
    printf("\n");
}

/* the target, which must be a loopback address */
static socklen_t loopback_target(struct sockaddr_storage *dst) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)dst;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)dst;
    const char *host = strcmp(target, "localhost") == 0 ? "127.0.0.1" : target;
    memset(dst, 0, sizeof *dst);
    if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        if (ntohl(v4->sin_addr.s_addr) >> 24 != 127) goto refuse;
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)target_port);
        family = AF_INET;
        peer_size = 6;
        return sizeof *v4;
    }
    if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        if (!IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr)) goto refuse;
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)target_port);
        family = AF_INET6;
        peer_size = 18;
        return sizeof *v6;
    }
    fprintf(stderr, "udpload: %s is not a numeric loopback address\n", host);
    exit(2);
refuse:
    fprintf(stderr, "udpload: refusing %s: loopback targets only\n", host);
    exit(2);
}

static void open_sources(const struct sockaddr_storage *dst, socklen_t len) {
    n_sources = family == AF_INET6 ? 1 : (int)((n_peers + PORTS - 1) / PORTS);
    if (n_sources > MAX_SOURCES) n_sources = MAX_SOURCES;
    if (n_sources < 1) n_sources = 1;
    for (int s = 0; s < n_sources; s++) {
        int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0), size = 8 << 20;
        if (fd < 0) fail("socket");
        if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
        if (setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0)
            setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
        if (n_sources > 1) {   /* 127.0.0.1, 127.0.0.2, ...: every peer an address of its own */
            struct sockaddr_in from = { .sin_family = AF_INET };
            from.sin_addr.s_addr = htonl(0x7f000001u + (uint32_t)s);
            if (bind(fd, (struct sockaddr *)&from, sizeof from) < 0) fail("bind");
        }
        if (connect(fd, (const struct sockaddr *)dst, len) < 0) fail("connect");
        sources[s].fd = fd;
    }
}

/* Send what build_announce put in batch[s] (count[s] announces of source s): one GSO send,
 * or sendmmsg. Slots of what could not be sent are freed again. Returns whether any went. */
static uint8_t batch[MAX_SOURCES][BATCH * ANNOUNCE_LEN];
static uint32_t batch_slots[MAX_SOURCES][BATCH];

static int send_batch(int s, int count) {
    uint8_t *base = batch[s];
    int done = 0;
    if (use_gso) {
        struct iovec iov = { base, (size_t)count * ANNOUNCE_LEN };
        union { char buf[CMSG_SPACE(sizeof(uint16_t))]; struct cmsghdr align; } control;
        struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
        if (count > 1) {
            uint16_t segment = ANNOUNCE_LEN;
            msg.msg_control = control.buf;
            msg.msg_controllen = sizeof control.buf;
            struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
            c->cmsg_level = SOL_UDP;
            c->cmsg_type = UDP_SEGMENT;
            c->cmsg_len = CMSG_LEN(sizeof segment);
            memcpy(CMSG_DATA(c), &segment, sizeof segment);
        }
        if (sendmsg(sources[s].fd, &msg, 0) >= 0) {
            done = count;
        } else if (errno == EINVAL || errno == EIO || errno == EOPNOTSUPP || errno == ENOPROTOOPT) {
            fprintf(stderr, "udpload: no UDP GSO here (%s): sendmmsg instead\n", strerror(errno));
            use_gso = 0;
        }
    } else {
        struct mmsghdr msgs[BATCH];
        struct iovec iovs[BATCH];
        memset(msgs, 0, sizeof msgs);
        for (int i = 0; i < count; i++) {
            iovs[i] = (struct iovec){ base + (size_t)i * ANNOUNCE_LEN, ANNOUNCE_LEN };
            msgs[i].msg_hdr.msg_iov = &iovs[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        while (done < count) {
            int r = sendmmsg(sources[s].fd, msgs + done, (unsigned)(count - done), 0);
            if (r <= 0) break;   /* a full buffer: the rest waits for the next turn */
            done += r;
        }
    }
    for (int i = done; i < count; i++) release(batch_slots[s][i]);
    if (measuring) { sent += (uint64_t)done; send_failed += (uint64_t)(count - done); }
    return done > 0;
}

/* Fill the window: batches of announces while enough slots are free. */
static int fill_window(uint32_t refill_at, uint64_t t) {
    int went = 0;
    while (n_free > 0 && (n_free >= refill_at || n_free == window)) {
        int count[MAX_SOURCES] = { 0 }, built = 0;
        while (n_free > 0 && built < BATCH) {
            uint32_t slot = free_slots[n_free - 1];
            uint8_t packet[ANNOUNCE_LEN];
            int s = build_announce(packet, slot, t);
            if (s < 0) break;
            n_free--;
            built++;
            memcpy(batch[s] + (size_t)count[s] * ANNOUNCE_LEN, packet, ANNOUNCE_LEN);
            batch_slots[s][count[s]++] = slot;
        }
        for (int s = 0; s < n_sources; s++)
            if (count[s]) went |= send_batch(s, count[s]);
        if (built < BATCH) break;
    }
    return went;
}

static int read_answers(void) {
    static uint8_t buffers[BATCH][DATAGRAM_MAX];
    static struct mmsghdr msgs[BATCH];
    static struct iovec iovs[BATCH];
    int got = 0;
    for (int s = 0; s < n_sources; s++) {
        for (;;) {
            for (int i = 0; i < BATCH; i++) {
                iovs[i] = (struct iovec){ buffers[i], DATAGRAM_MAX };
                msgs[i].msg_hdr.msg_iov = &iovs[i];
                msgs[i].msg_hdr.msg_iovlen = 1;
            }
            int r = recvmmsg(sources[s].fd, msgs, BATCH, MSG_DONTWAIT, NULL);
            if (r <= 0) break;
            uint64_t t = now_ns();
            for (int i = 0; i < r; i++) answered(s, buffers[i], (ssize_t)msgs[i].msg_len, t);
            got = 1;
            if (r < BATCH) break;
        }
    }
    return got;
}

int main(int argc, char **argv) {
    int c;
    while ((c = getopt(argc, argv, "h:p:d:W:t:n:w:z:m:e:S:GD")) != -1) {
        switch (c) {
        case 'h': target = optarg; break;
        case 'p': target_port = atoi(optarg); break;
        case 'd': measure_s = atof(optarg); break;
        case 'W': warmup_s = atof(optarg); break;
        case 't': n_hashes = (uint32_t)strtoul(optarg, 0, 10); break;
        case 'n': n_peers = (uint32_t)strtoul(optarg, 0, 10); break;
        case 'w': window = (uint32_t)strtoul(optarg, 0, 10); break;
        case 'z': zipf = atof(optarg); break;
        case 'm': numwant = atoi(optarg); break;
        case 'e': seeder_share = atof(optarg); break;
        case 'S': seed = strtoull(optarg, 0, 10); break;
        case 'G': use_gso = 0; break;
        case 'D': dump_pool = 1; break;
        default: usage();
        }
    }
    if (!n_hashes || !n_peers || !window || window > MAX_WINDOW || measure_s <= 0
        || measure_s > 3600 || warmup_s < 0 || warmup_s > 600)
        usage();
    make_pool();
    if (dump_pool) {
        for (uint32_t i = 0; i < n_hashes; i++) {
            for (int j = 0; j < 20; j++) printf("%02x", pool[(size_t)i * 20 + j]);
            putchar('\n');
        }
        return 0;
    }
    make_peers();
    stream = 0x243f6a8885a308d3ull * (seed + 1);   /* the same requests for the same seed */

    struct sockaddr_storage dst;
    socklen_t dst_len = loopback_target(&dst);
    open_sources(&dst, dst_len);
    slots = calloc(window, sizeof *slots);
    free_slots = malloc(sizeof(uint32_t) * window);
    for (uint32_t i = 0; i < window; i++) free_slots[i] = window - 1 - i;
    n_free = window;
    latency = calloc(LATENCY_US, sizeof *latency);
    struct pollfd fds[MAX_SOURCES];
    for (int s = 0; s < n_sources; s++) fds[s] = (struct pollfd){ sources[s].fd, POLLIN, 0 };

    /* send when an eighth of the window (32 at most) is free: batches, not single datagrams */
    uint32_t refill_at = window / 8 < 32 ? window / 8 : 32;
    if (refill_at < 1) refill_at = 1;
    uint64_t t = now_ns(), last_expiry = t;
    uint64_t measure_from = t + (uint64_t)(warmup_s * 1e9);
    uint64_t end = measure_from + (uint64_t)(measure_s * 1e9);
    uint64_t lost_ns = (uint64_t)(lost_after_s * 1e9), renew_ns = (uint64_t)(renew_s * 1e9);
    double cpu_at_start = cpu_seconds();
    measuring = warmup_s == 0;

    while ((t = now_ns()) < end) {
        if (!measuring && t >= measure_from) {
            measuring = 1;
            cpu_at_start = cpu_seconds();
            measure_from = t;
            end = t + (uint64_t)(measure_s * 1e9);
        }
        for (int s = 0; s < n_sources; s++) {
            struct source *src = &sources[s];
            if (src->connecting ? t - src->connect_sent > 500000000ull   /* connect lost */
                                : !src->connected || t - src->connected_at > renew_ns)
                send_connect(s, t);
        }
        int went = fill_window(refill_at, t);
        int got = read_answers();
        if (t - last_expiry > 10000000ull) {   /* every 10 ms: give up on lost requests */
            last_expiry = t;
            for (uint32_t i = 0; i < window; i++)
                if (slots[i].busy && t - slots[i].sent > lost_ns) {
                    release(i);
                    if (measuring) lost++;
                }
        }
        if (!went && !got) poll(fds, (nfds_t)n_sources, 1);
    }
    report((double)(now_ns() - measure_from) / 1e9, cpu_seconds() - cpu_at_start);
    if (!ever_connected) {
        fprintf(stderr, "udpload: the tracker never answered a connect\n");
        return 3;
    }
    return 0;
}
