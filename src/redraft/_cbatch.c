/*
 * The fast path of redraft.proposals.encode_batch: a NORMAL log entry's
 * data, msgpack of (stamp_ns, [[arg, ...], ...]), for the usual batch whose
 * commands are lists of bytes.
 *
 * The bytes are exactly those msgpack.Packer(use_bin_type=True).pack gives
 * for the same value (tests/test_batch_codec.py compares them on random
 * batches), so the log format does not depend on which encoder wrote an
 * entry.  msgpack's packer dispatches on the type of every object in turn;
 * here a command is a list of bytes and nothing else, which makes the
 * encoding a size pass and a copy.  Anything else (a stamp out of range, a
 * command that is not a list of bytes) returns None: the caller packs that
 * batch with msgpack itself.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* Bytes of the header msgpack gives an array of n items. */
static Py_ssize_t
array_header_size(Py_ssize_t n)
{
    return n < 16 ? 1 : (n < 0x10000 ? 3 : 5);
}

/* Bytes of the header msgpack gives a bin of n bytes (use_bin_type). */
static Py_ssize_t
bin_header_size(Py_ssize_t n)
{
    return n < 0x100 ? 2 : (n < 0x10000 ? 3 : 5);
}

/* Bytes msgpack writes a non-negative integer in (see put_uint). */
static Py_ssize_t
uint_size(uint64_t v)
{
    return v < 0x80 ? 1 : (v <= 0xff ? 2 : (v <= 0xffff ? 3 : (v <= 0xffffffffu ? 5 : 9)));
}

static char *
put_be(char *p, uint64_t v, int bytes)
{
    for (int i = bytes - 1; i >= 0; i--) {
        p[i] = (char)(v & 0xff);
        v >>= 8;
    }
    return p + bytes;
}

/* A tag byte, then v in `bytes` big-endian bytes: every longer msgpack form. */
static char *
put_tagged(char *p, int tag, uint64_t v, int bytes)
{
    *p++ = (char)tag;
    return put_be(p, v, bytes);
}

static char *
put_array_header(char *p, Py_ssize_t n)
{
    if (n < 16) {
        *p++ = (char)(0x90 | n);
        return p;
    }
    return n < 0x10000 ? put_tagged(p, 0xdc, (uint64_t)n, 2) : put_tagged(p, 0xdd, (uint64_t)n, 4);
}

static char *
put_bin_header(char *p, Py_ssize_t n)
{
    if (n < 0x100)
        return put_tagged(p, 0xc4, (uint64_t)n, 1);
    return n < 0x10000 ? put_tagged(p, 0xc5, (uint64_t)n, 2) : put_tagged(p, 0xc6, (uint64_t)n, 4);
}

/* A non-negative integer as msgpack writes it: the smallest unsigned form. */
static char *
put_uint(char *p, uint64_t v)
{
    if (v < 0x80) {
        *p++ = (char)v;
        return p;
    }
    if (v <= 0xff)
        return put_tagged(p, 0xcc, v, 1);
    if (v <= 0xffff)
        return put_tagged(p, 0xcd, v, 2);
    return v <= 0xffffffffu ? put_tagged(p, 0xce, v, 4) : put_tagged(p, 0xcf, v, 8);
}

static PyObject *
pack_batch(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "pack_batch() takes (stamp_ns, cmds)");
        return NULL;
    }
    PyObject *stamp = args[0];
    PyObject *cmds = args[1];
    if (!PyLong_CheckExact(stamp) || !PyList_CheckExact(cmds))
        Py_RETURN_NONE;
    int overflow = 0;
    long long s = PyLong_AsLongLongAndOverflow(stamp, &overflow);
    if (s == -1 && PyErr_Occurred())
        return NULL;
    if (overflow || s < 0)
        Py_RETURN_NONE; /* msgpack's own forms for these */
    Py_ssize_t n = PyList_GET_SIZE(cmds);
    if (n >= ((Py_ssize_t)1 << 32))
        Py_RETURN_NONE;
    Py_ssize_t size = 1 + uint_size((uint64_t)s) + array_header_size(n); /* 1: the pair's */
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *cmd = PyList_GET_ITEM(cmds, i);
        if (!PyList_CheckExact(cmd))
            Py_RETURN_NONE;
        Py_ssize_t m = PyList_GET_SIZE(cmd);
        if (m >= ((Py_ssize_t)1 << 32))
            Py_RETURN_NONE;
        size += array_header_size(m);
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *arg = PyList_GET_ITEM(cmd, j);
            if (!PyBytes_CheckExact(arg))
                Py_RETURN_NONE;
            Py_ssize_t len = PyBytes_GET_SIZE(arg);
            if (len >= ((Py_ssize_t)1 << 32))
                Py_RETURN_NONE;
            size += bin_header_size(len) + len;
        }
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, size);
    if (out == NULL)
        return NULL;
    char *start = PyBytes_AS_STRING(out);
    char *p = start;
    *p++ = (char)0x92;
    p = put_uint(p, (uint64_t)s);
    p = put_array_header(p, n);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *cmd = PyList_GET_ITEM(cmds, i);
        Py_ssize_t m = PyList_GET_SIZE(cmd);
        p = put_array_header(p, m);
        for (Py_ssize_t j = 0; j < m; j++) {
            PyObject *arg = PyList_GET_ITEM(cmd, j);
            Py_ssize_t len = PyBytes_GET_SIZE(arg);
            p = put_bin_header(p, len);
            memcpy(p, PyBytes_AS_STRING(arg), (size_t)len);
            p += len;
        }
    }
    assert(p - start == size);
    return out;
}

PyDoc_STRVAR(pack_batch_doc,
             "pack_batch(stamp_ns, cmds) -> bytes | None\n\n"
             "msgpack of ``(stamp_ns, cmds)`` as ``msgpack.Packer(use_bin_type=True)``\n"
             "gives it, when ``stamp_ns`` is a non-negative int below 2**63 and\n"
             "``cmds`` a list of lists of bytes; None otherwise.");

static PyMethodDef methods[] = {
    {"pack_batch", (PyCFunction)(void (*)(void))pack_batch, METH_FASTCALL, pack_batch_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "redraft._cbatch",
    "The fast path of the log entry batch encoder (see redraft.proposals).",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__cbatch(void)
{
    return PyModule_Create(&module_def);
}
