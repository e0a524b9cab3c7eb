/* Batched datagram I/O for the BEP 15 UDP tracker: recvmmsg(2) in, sendmmsg(2) out.
 *
 * serve(fd, handler, now, budget) reads up to `budget` datagrams from the non-blocking
 * socket `fd` in batches of up to BATCH, calls handler(data, host, port, now) for each (bytes,
 * str, int, float; `host` as Python's socket module writes it, e.g. "::ffff:127.0.0.1" on a
 * dual-stack socket), and sends every reply the handler returns (bytes; None for no reply) to
 * the datagram's source with one sendmmsg per batch. The source address is copied, never
 * parsed again. Returns (received, sent, dropped): `dropped` counts replies the kernel refused
 * (a full send buffer, an unreachable destination), which are lost as the network might lose
 * them. Datagrams longer than MAX_DATAGRAM are dropped unanswered (no BEP 15 request is that
 * long). Stops early when the socket has nothing more to read. Linux only; the pure-Python
 * loop in weightless/udp/port.py is the fallback and the reference.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#define BATCH 64
#define MAX_DATAGRAM 8192

static char buffers[BATCH][MAX_DATAGRAM];
static struct sockaddr_storage sources[BATCH];
static struct iovec in_iov[BATCH];
static struct mmsghdr in_msgs[BATCH];

static struct sockaddr_storage dests[BATCH];
static struct iovec out_iov[BATCH];
static struct mmsghdr out_msgs[BATCH];
static PyObject *out_refs[BATCH];

static int busy;

/* Host strings of recent sources, direct-mapped by address: a client sends many datagrams, and
 * reusing its string object saves formatting it and, in the tracker's dicts, hashing it again. */
#define HOSTS 1024
static struct {
    unsigned char addr[16];
    int family;
    PyObject *host;
} hosts[HOSTS];

/* "a.b.c.d" into `out`; returns the length (glibc's inet_ntop goes through sprintf) */
static int format_ipv4(const unsigned char *b, char *out) {
    char *p = out;
    for (int i = 0; i < 4; i++) {
        unsigned v = b[i];
        if (v >= 100) {
            *p++ = (char)('0' + v / 100);
            v %= 100;
            *p++ = (char)('0' + v / 10);
        } else if (v >= 10) {
            *p++ = (char)('0' + v / 10);
        }
        *p++ = (char)('0' + v % 10);
        if (i < 3) *p++ = '.';
    }
    return (int)(p - out);
}

static PyObject *host_of(int family, const unsigned char *addr) {
    size_t size = family == AF_INET ? 4 : 16;
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < size; i++) h = (h ^ addr[i]) * 16777619u;
    unsigned slot = (h ^ (h >> 16)) % HOSTS;
    if (hosts[slot].host && hosts[slot].family == family && !memcmp(hosts[slot].addr, addr, size)) {
        Py_INCREF(hosts[slot].host);
        return hosts[slot].host;
    }
    char text[INET6_ADDRSTRLEN];
    int len;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (family == AF_INET) {
        len = format_ipv4(addr, text);
    } else if (!memcmp(addr, mapped, 12)) { /* as inet_ntop writes it: ::ffff:a.b.c.d */
        memcpy(text, "::ffff:", 7);
        len = 7 + format_ipv4(addr + 12, text + 7);
    } else {
        if (!inet_ntop(AF_INET6, addr, text, sizeof text)) return NULL;
        len = (int)strlen(text);
    }
    PyObject *host = PyUnicode_DecodeASCII(text, len, NULL);
    if (!host) return NULL;
    Py_XSETREF(hosts[slot].host, host);
    Py_INCREF(host);
    memcpy(hosts[slot].addr, addr, size);
    hosts[slot].family = family;
    return host;
}

/* host string and port of a source address, as Python's socket module reports them;
 * -1: not an IP address, -2: out of memory (a Python exception is set) */
static int address(const struct sockaddr_storage *ss, PyObject **host, PyObject **port) {
    unsigned short p;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        *host = host_of(AF_INET, (const unsigned char *)&a->sin_addr);
        p = ntohs(a->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        *host = host_of(AF_INET6, a->sin6_addr.s6_addr);
        p = ntohs(a->sin6_port);
    } else {
        return -1;
    }
    if (!*host) {
        if (PyErr_Occurred()) return -2;
        return -1;
    }
    *port = PyLong_FromLong(p);
    if (!*port) {
        Py_DECREF(*host);
        return -2;
    }
    return 0;
}

/* Send the `count` queued replies; returns how many the kernel took. Replies it refuses are
 * skipped one at a time, except on a full buffer (EAGAIN), which drops all that remain. */
static Py_ssize_t flush(int fd, int count) {
    Py_ssize_t sent = 0;
    int at = 0;
    while (at < count) {
        int n = sendmmsg(fd, out_msgs + at, (unsigned)(count - at), MSG_DONTWAIT);
        if (n > 0) {
            sent += n;
            at += n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
            break;
        } else {
            at += 1; /* this destination is refused (e.g. unreachable): skip it */
        }
    }
    for (int i = 0; i < count; i++) Py_CLEAR(out_refs[i]);
    return sent;
}

static PyObject *serve(PyObject *self, PyObject *args) {
    int fd;
    PyObject *handler, *now;
    Py_ssize_t budget;
    if (!PyArg_ParseTuple(args, "iOO!n", &fd, &handler, &PyFloat_Type, &now, &budget)) return NULL;
    if (!PyCallable_Check(handler)) {
        PyErr_SetString(PyExc_TypeError, "handler must be callable");
        return NULL;
    }
    if (busy) {
        PyErr_SetString(PyExc_RuntimeError, "serve() is not re-entrant");
        return NULL;
    }
    busy = 1;
    Py_ssize_t received = 0, sent = 0, replies = 0;
    int failed = 0; /* the handler raised (or memory ran out): stop, send what is queued */
    while (received < budget && !failed) {
        unsigned want = (unsigned)(budget - received < BATCH ? budget - received : BATCH);
        for (unsigned i = 0; i < want; i++) {
            in_iov[i].iov_base = buffers[i];
            in_iov[i].iov_len = MAX_DATAGRAM;
            memset(&in_msgs[i].msg_hdr, 0, sizeof in_msgs[i].msg_hdr);
            in_msgs[i].msg_hdr.msg_name = &sources[i];
            in_msgs[i].msg_hdr.msg_namelen = sizeof sources[i];
            in_msgs[i].msg_hdr.msg_iov = &in_iov[i];
            in_msgs[i].msg_hdr.msg_iovlen = 1;
        }
        int n = recvmmsg(fd, in_msgs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (n < 0) {
            if (errno == EINTR) continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK) break;
            busy = 0;
            return PyErr_SetFromErrno(PyExc_OSError);
        }
        if (n == 0) break;
        received += n;
        int queued = 0;
        for (int i = 0; i < n; i++) {
            struct msghdr *h = &in_msgs[i].msg_hdr;
            if ((h->msg_flags & MSG_TRUNC) || in_msgs[i].msg_len > MAX_DATAGRAM) continue;
            PyObject *host, *port;
            int bad = address(&sources[i], &host, &port);
            if (bad == -1) continue; /* not an IP source: nobody to answer */
            if (bad == -2) {
                failed = 1;
                break;
            }
            PyObject *data = PyBytes_FromStringAndSize(buffers[i], in_msgs[i].msg_len);
            if (!data) {
                Py_DECREF(host);
                Py_DECREF(port);
                failed = 1;
                break;
            }
            PyObject *argv[4] = {data, host, port, now};
            PyObject *reply = PyObject_Vectorcall(handler, argv, 4, NULL);
            Py_DECREF(data);
            Py_DECREF(host);
            Py_DECREF(port);
            if (!reply) {
                failed = 1;
                break;
            }
            if (!PyBytes_Check(reply)) {
                Py_DECREF(reply); /* None: no answer */
                continue;
            }
            memcpy(&dests[queued], &sources[i], h->msg_namelen);
            out_iov[queued].iov_base = PyBytes_AS_STRING(reply);
            out_iov[queued].iov_len = (size_t)PyBytes_GET_SIZE(reply);
            memset(&out_msgs[queued].msg_hdr, 0, sizeof out_msgs[queued].msg_hdr);
            out_msgs[queued].msg_hdr.msg_name = &dests[queued];
            out_msgs[queued].msg_hdr.msg_namelen = h->msg_namelen;
            out_msgs[queued].msg_hdr.msg_iov = &out_iov[queued];
            out_msgs[queued].msg_hdr.msg_iovlen = 1;
            out_refs[queued] = reply;
            queued++;
        }
        replies += queued;
        if (queued) {
            PyObject *type, *value, *tb;
            PyErr_Fetch(&type, &value, &tb); /* keep a handler's exception across the send */
            sent += flush(fd, queued);
            PyErr_Restore(type, value, tb);
        }
        if (n < (int)want) break; /* the socket is empty for now */
    }
    busy = 0;
    if (failed) return NULL;
    return Py_BuildValue("nnn", received, sent, replies - sent);
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_VARARGS,
     "serve(fd, handler, now, budget) -> (received, sent, dropped): answer up to `budget`\n"
     "datagrams with handler(data, host, port, now) -> bytes | None, batched with\n"
     "recvmmsg/sendmmsg."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "weightless.udp._udpbatch",
    "recvmmsg/sendmmsg batches for the UDP tracker (see weightless/udp/port.py).", -1, methods,
};

PyMODINIT_FUNC PyInit__udpbatch(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "BATCH", BATCH) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (m && PyModule_AddIntConstant(m, "MAX_DATAGRAM", MAX_DATAGRAM) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
