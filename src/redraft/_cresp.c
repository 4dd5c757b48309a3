/*
 * redraft._cresp: the C fast paths of redraft.resp.
 *
 * parse() takes the complete multibulk requests at the front of a buffer,
 * reading every byte exactly as Redis's processMultibulkBuffer does, and
 * stops at the first request it cannot take whole: one that is incomplete,
 * inline, malformed or over a limit.  The Python parser in redraft.resp
 * carries on from there, so errors, limits and partial requests keep the one
 * implementation they have.  Nothing is allocated for a request before all
 * of it has arrived, so a huge announced count costs nothing.
 *
 * encode() and encode3() reply with the common values (bytes, None, small
 * ints, OK) and hand everything else to the Python encoders they replace.
 *
 * run_end() finds where a run of one command's parsed requests ends (a
 * pipeline of SETs), so the session and the apply loop take it whole.
 *
 * Given a lookup, parse() first answers the requests "NAME key" at the front
 * of the buffer whose value a machine keeps in a dict (GET of a string): the
 * reply is written without a list, a Python call or an encoder per request.
 * Any request it cannot answer that way, and everything after it, is parsed
 * as usual, so the session serves it in order behind those replies.
 *
 * redraft.resp runs without this module (REDRAFT_PURE_PYTHON=1, or no C
 * compiler at install): both paths give the same results byte for byte.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

/* Set by configure(): the values and fallbacks of redraft.resp. */
static PyObject *ok_value = NULL;    /* redraft.machine.OK */
static PyObject *ok_reply = NULL;    /* b"+OK\r\n" */
static PyObject *null2_reply = NULL; /* b"$-1\r\n" */
static PyObject *null3_reply = NULL; /* b"_\r\n" */
static PyObject *fallback2 = NULL;   /* the Python encode() */
static PyObject *fallback3 = NULL;   /* the Python encode3() */

#define SMALL_INTS 1024
static PyObject *int_replies[SMALL_INTS];

/*
 * Redis's string2ll for a header's digits: an optional '-', then no leading
 * zero (but "0" itself).  Up to 18 digits, so no overflow; longer values
 * are over every limit and left to the Python parser, which refuses them.
 * Returns 0 when the Python parser must decide.
 */
static int
header_value(const char *p, Py_ssize_t len, long long *out)
{
    int neg = 0;
    long long v = 0;
    if (len > 0 && p[0] == '-') {
        neg = 1;
        p++;
        len--;
    }
    if (len <= 0 || len > 18)
        return 0;
    if (p[0] == '0') {
        if (len != 1 || neg)
            return 0;
        *out = 0;
        return 1;
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = p[i];
        if (c < '0' || c > '9')
            return 0;
        v = v * 10 + (c - '0');
    }
    *out = neg ? -v : v;
    return 1;
}

/*
 * The header line at buf[pos] (its type byte already checked): like Redis,
 * it ends at the first CR, and the byte after the CR is skipped unchecked.
 * Returns the position after the line, or -1 when the Python parser must
 * decide (incomplete, longer than max_inline, not a number).
 */
static Py_ssize_t
header(const char *buf, Py_ssize_t n, Py_ssize_t pos, Py_ssize_t max_inline, long long *value)
{
    Py_ssize_t window = n - pos;
    if (window > max_inline + 1)
        window = max_inline + 1;
    const char *cr = memchr(buf + pos, '\r', (size_t)window);
    if (cr == NULL)
        return -1;
    Py_ssize_t at = cr - buf;
    if (at + 1 >= n)
        return -1;
    if (!header_value(buf + pos + 1, at - pos - 1, value))
        return -1;
    return at + 2;
}

/*
 * Where the request at buf[pos] ends if it can be taken whole, else -1.
 * *count gets its argument count (<= 0: a request Redis skips).
 */
static Py_ssize_t
request_end(const char *buf, Py_ssize_t n, Py_ssize_t pos, long long max_bulk,
            long long max_mbulk, Py_ssize_t max_inline, long long *count, Py_ssize_t *first)
{
    Py_ssize_t p = header(buf, n, pos, max_inline, count);
    if (p < 0 || *count > max_mbulk)
        return -1;
    *first = p;
    for (long long i = 0; i < *count; i++) {
        long long size;
        if (p >= n || buf[p] != '$')
            return -1;
        p = header(buf, n, p, max_inline, &size);
        if (p < 0 || size < 0 || size > max_bulk)
            return -1;
        /* The payload, then two bytes Redis skips without looking. */
        if (size + 2 > n - p)
            return -1;
        p += (Py_ssize_t)size + 2;
    }
    return p;
}

/* The length and start of the bulk argument whose '$' is at p (request_end() checked it). */
static const char *
bulk_arg(const char *p, Py_ssize_t *size)
{
    Py_ssize_t n = 0;
    p++; /* '$' */
    while (*p != '\r')
        n = n * 10 + (*p++ - '0');
    *size = n;
    return p + 2;
}

/* The arguments of a request request_end() accepted; ``first``: its first '$'. */
static PyObject *
build_request(const char *buf, Py_ssize_t first, long long count)
{
    PyObject *args = PyList_New((Py_ssize_t)count);
    if (args == NULL)
        return NULL;
    const char *p = buf + first;
    for (Py_ssize_t i = 0; i < (Py_ssize_t)count; i++) {
        Py_ssize_t size;
        p = bulk_arg(p, &size);
        PyObject *arg = PyBytes_FromStringAndSize(p, size);
        if (arg == NULL) {
            Py_DECREF(args);
            return NULL;
        }
        PyList_SET_ITEM(args, i, arg);
        p += size + 2;
    }
    return args;
}

#define LOOKUP_NAME_MAX 32

/* value, a bytes object, as a bulk string at w: its header (bulk_head()), itself, CRLF. */
static void
write_bulk(char *w, const char *head, int hlen, PyObject *value)
{
    Py_ssize_t len = PyBytes_GET_SIZE(value);
    memcpy(w, head, (size_t)hlen);
    memcpy(w + hlen, PyBytes_AS_STRING(value), (size_t)len);
    w[hlen + len] = '\r';
    w[hlen + len + 1] = '\n';
}

/* The header of value (bytes) as a bulk string, "$<len>\r\n", into head[32]; its length. */
static int
bulk_head(char *head, PyObject *value)
{
    return snprintf(head, 32, "$%zd\r\n", PyBytes_GET_SIZE(value));
}

/* Make room for n more bytes at the end of the bytearray replies; where they go, or NULL. */
static char *
grow(PyObject *replies, Py_ssize_t n)
{
    Py_ssize_t have = PyByteArray_GET_SIZE(replies);
    if (PyByteArray_Resize(replies, have + n) < 0)
        return NULL;
    return PyByteArray_AS_STRING(replies) + have;
}

/* Append value, a bytes object, to the bytearray replies: as a bulk string, or as it is. */
static int
append_reply(PyObject *replies, PyObject *value, int as_bulk)
{
    char head[32];
    int hlen = as_bulk ? bulk_head(head, value) : 0;
    Py_ssize_t len = PyBytes_GET_SIZE(value);
    char *w = grow(replies, as_bulk ? hlen + len + 2 : len);
    if (w == NULL)
        return -1;
    if (as_bulk)
        write_bulk(w, head, hlen, value);
    else
        memcpy(w, PyBytes_AS_STRING(value), (size_t)len);
    return 0;
}

/*
 * The callable that table holds for the request name at ``name`` (any case),
 * borrowed; NULL when the name is no lookup (no exception) or on an error.
 */
static PyObject *
lookup_of(PyObject *table, const char *name, Py_ssize_t len)
{
    char lower[LOOKUP_NAME_MAX];
    if (len <= 0 || len > LOOKUP_NAME_MAX)
        return NULL;
    for (Py_ssize_t i = 0; i < len; i++) {
        char c = name[i];
        lower[i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
    }
    PyObject *key = PyBytes_FromStringAndSize(lower, len);
    if (key == NULL)
        return NULL;
    PyObject *tables = PyDict_GetItemWithError(table, key);
    Py_DECREF(key);
    return tables;
}

/*
 * Call tables(), the machine's: a tuple of dicts, (values, unless...), as a
 * new reference; NULL (no exception) when it returned anything else or
 * raised: the machine's read then serves the request, and answers its error.
 */
static PyObject *
lookup_tables(PyObject *tables)
{
    PyObject *dicts = PyObject_CallNoArgs(tables);
    if (dicts == NULL) {
        PyErr_Clear();
        return NULL;
    }
    Py_ssize_t n = PyTuple_CheckExact(dicts) ? PyTuple_GET_SIZE(dicts) : 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (!PyDict_CheckExact(PyTuple_GET_ITEM(dicts, i)))
            n = 0;
    }
    if (n == 0)
        Py_CLEAR(dicts);
    return dicts;
}

/* Whether gate() allows answering now: 1, 0, or -1 on an error. */
static int
gate_open(PyObject *gate)
{
    PyObject *open = PyObject_CallNoArgs(gate);
    if (open == NULL)
        return -1;
    int yes = PyObject_IsTrue(open);
    Py_DECREF(open);
    return yes;
}

/*
 * The reply to "NAME key", key[0..len), from dicts (values, unless...): the
 * bytes value (borrowed), nil when the key is in none of them, or NULL: a
 * key in an unless dict or a value of another type (no exception), or an
 * error (exception set).
 */
static PyObject *
lookup_value(PyObject *dicts, PyObject *nil, const char *key, Py_ssize_t len)
{
    PyObject *k = PyBytes_FromStringAndSize(key, len);
    if (k == NULL)
        return NULL;
    PyObject *value = NULL;
    int left = 0; /* 1: the read answers it; -1: an error */
    for (Py_ssize_t i = 1; i < PyTuple_GET_SIZE(dicts) && !left; i++) {
        PyObject *unless = PyTuple_GET_ITEM(dicts, i);
        if (PyDict_GET_SIZE(unless) > 0)
            left = PyDict_Contains(unless, k) ? (PyErr_Occurred() ? -1 : 1) : 0;
    }
    if (!left) {
        value = PyDict_GetItemWithError(PyTuple_GET_ITEM(dicts, 0), k);
        if (value == NULL && !PyErr_Occurred())
            value = nil;
        else if (value != NULL && !PyBytes_CheckExact(value))
            value = NULL;
    }
    Py_DECREF(k);
    return value;
}

/*
 * Answer the lookups at the front of buf from pos (see the top of this
 * file).  lookup is (table, gate, replies, limit, nil): table maps a
 * lower-case command name to a callable returning a tuple of dicts (values,
 * unless...); gate() is called before the first answer and says whether
 * reads may be answered now; replies is a bytearray; nil the reply to a key
 * in none of the dicts.  A request "NAME key" is answered when NAME is in
 * table and its key is in no unless dict: with its value in values when
 * that is bytes (as a bulk string), with nil when it has none.  Stops at the
 * first other request, or once replies holds over limit bytes.  Returns the
 * position after the last request answered; -1 on an error.
 */
static Py_ssize_t
answer_lookups(const char *buf, Py_ssize_t n, Py_ssize_t pos, PyObject *lookup,
               long long max_bulk, Py_ssize_t max_inline)
{
    if (!PyTuple_CheckExact(lookup) || PyTuple_GET_SIZE(lookup) != 5 ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(lookup, 0)) ||
        !PyByteArray_CheckExact(PyTuple_GET_ITEM(lookup, 2)) ||
        !PyBytes_CheckExact(PyTuple_GET_ITEM(lookup, 4))) {
        PyErr_SetString(PyExc_TypeError, "parse() needs (dict, gate, bytearray, limit, bytes)");
        return -1;
    }
    PyObject *table = PyTuple_GET_ITEM(lookup, 0);
    PyObject *gate = PyTuple_GET_ITEM(lookup, 1);
    PyObject *replies = PyTuple_GET_ITEM(lookup, 2);
    PyObject *nil = PyTuple_GET_ITEM(lookup, 4);
    Py_ssize_t limit = PyLong_AsSsize_t(PyTuple_GET_ITEM(lookup, 3));
    if (limit == -1 && PyErr_Occurred())
        return -1;
    PyObject *dicts = NULL;
    const char *last = NULL; /* the spelling of the name whose dicts these are */
    Py_ssize_t last_len = 0;
    Py_ssize_t done = pos;
    while (pos < n && buf[pos] == '*' && PyByteArray_GET_SIZE(replies) <= limit) {
        long long count;
        Py_ssize_t first, name_len, key_len;
        Py_ssize_t end = request_end(buf, n, pos, max_bulk, 2, max_inline, &count, &first);
        if (end < 0 || count != 2)
            break;
        const char *name = bulk_arg(buf + first, &name_len);
        const char *key = bulk_arg(name + name_len + 2, &key_len);
        if (last == NULL || name_len != last_len || memcmp(name, last, (size_t)name_len) != 0) {
            PyObject *tables = lookup_of(table, name, name_len);
            int found = tables == NULL ? (PyErr_Occurred() ? -1 : 0) : 1;
            Py_XINCREF(tables); /* held across the calls into Python */
            if (found > 0 && last == NULL)
                found = gate_open(gate); /* once, and only for a lookup */
            if (found > 0) {
                Py_CLEAR(dicts);
                dicts = lookup_tables(tables);
                found = dicts != NULL;
            }
            Py_XDECREF(tables);
            if (found <= 0) {
                if (found < 0)
                    done = -1;
                break;
            }
            last = name;
            last_len = name_len;
        }
        PyObject *value = lookup_value(dicts, nil, key, key_len);
        if (value == NULL) {
            if (PyErr_Occurred())
                done = -1;
            break;
        }
        Py_INCREF(value);
        int failed = append_reply(replies, value, value != nil);
        Py_DECREF(value);
        if (failed) {
            done = -1;
            break;
        }
        pos = end;
        done = pos;
    }
    Py_XDECREF(dicts);
    return done;
}

PyDoc_STRVAR(parse_doc,
"parse(buf, pos, out, max_bulk, max_multibulk, max_inline, lookup=None) -> int\n\n"
"Append to ``out`` the requests of ``buf`` from ``pos`` on, as lists of\n"
"bytes, for as long as each is a complete multibulk request within the\n"
"limits; return the position of the first byte not consumed.  With a\n"
"``lookup`` (table, gate, replies, limit, nil), first answer the requests\n"
"\"NAME key\" at the front whose lower-case name ``table`` maps to a\n"
"callable returning a tuple of dicts (values, unless...), while ``gate()``\n"
"allowed it and the key is in no unless dict: its value in values when\n"
"that is bytes goes to the bytearray ``replies`` as a bulk string, ``nil``\n"
"when it has none, and the request to no list.");

static PyObject *
parse(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 6 && nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "parse() takes 6 or 7 arguments");
        return NULL;
    }
    PyObject *data = args[0];
    PyObject *out = args[2];
    if (!PyBytes_CheckExact(data) || !PyList_CheckExact(out)) {
        PyErr_SetString(PyExc_TypeError, "parse() needs bytes and a list");
        return NULL;
    }
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    long long max_bulk = PyLong_AsLongLong(args[3]);
    long long max_mbulk = PyLong_AsLongLong(args[4]);
    Py_ssize_t max_inline = PyLong_AsSsize_t(args[5]);
    if (PyErr_Occurred())
        return NULL;
    const char *buf = PyBytes_AS_STRING(data);
    Py_ssize_t n = PyBytes_GET_SIZE(data);
    if (pos < 0 || max_inline < 0)
        return PyLong_FromSsize_t(pos);
    if (nargs == 7 && args[6] != Py_None) {
        pos = answer_lookups(buf, n, pos, args[6], max_bulk, max_inline);
        if (pos < 0)
            return NULL;
    }
    while (pos < n && buf[pos] == '*') {
        long long count;
        Py_ssize_t first;
        Py_ssize_t end =
            request_end(buf, n, pos, max_bulk, max_mbulk, max_inline, &count, &first);
        if (end < 0)
            break;
        if (count > 0) {
            PyObject *request = build_request(buf, first, count);
            if (request == NULL)
                return NULL;
            int failed = PyList_Append(out, request);
            Py_DECREF(request);
            if (failed)
                return NULL;
        }
        pos = end;
    }
    return PyLong_FromSsize_t(pos);
}

static PyObject *
bulk(PyObject *value)
{
    char head[32];
    int hlen = bulk_head(head, value);
    PyObject *reply = PyBytes_FromStringAndSize(NULL, hlen + PyBytes_GET_SIZE(value) + 2);
    if (reply == NULL)
        return NULL;
    write_bulk(PyBytes_AS_STRING(reply), head, hlen, value);
    return reply;
}

static PyObject *
encode_common(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, PyObject *null_reply,
              PyObject *fallback)
{
    if (fallback == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "redraft._cresp is not configured");
        return NULL;
    }
    if (kwnames != NULL || nargs < 1 || nargs > 2) {
        /* The Python encoder checks and handles these calls.  (A cmd_name
         * only matters to the error replies, which Python encodes.) */
        return PyObject_Vectorcall(fallback, args, (size_t)nargs, kwnames);
    }
    PyObject *value = args[0];
    if (PyBytes_CheckExact(value))
        return bulk(value);
    if (value == ok_value)
        return Py_NewRef(ok_reply);
    if (value == Py_None)
        return Py_NewRef(null_reply);
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (!overflow) {
            if (v >= 0 && v < SMALL_INTS)
                return Py_NewRef(int_replies[v]);
            char text[32];
            int len = snprintf(text, sizeof text, ":%lld\r\n", v);
            return PyBytes_FromStringAndSize(text, len);
        }
    }
    return PyObject_Vectorcall(fallback, args, (size_t)nargs, NULL);
}

PyDoc_STRVAR(encode_doc,
"encode(value, cmd_name='') -> bytes\n\nThe RESP2 encoding of one reply value.");

static PyObject *
encode2(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return encode_common(args, nargs, kwnames, null2_reply, fallback2);
}

PyDoc_STRVAR(encode3_doc,
"encode3(value, cmd_name='') -> bytes\n\nThe RESP3 encoding of one reply value.");

static PyObject *
encode3(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    return encode_common(args, nargs, kwnames, null3_reply, fallback3);
}

PyDoc_STRVAR(configure_doc,
"configure(ok, ok_reply, null2, null3, fallback2, fallback3) -> None\n\n"
"Give the encoders redraft.resp's OK value and replies, and the Python\n"
"encoders that answer every other value.");

static PyObject *
configure(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *ok, *okr, *n2, *n3, *f2, *f3;
    if (!PyArg_ParseTuple(args, "OSSSOO:configure", &ok, &okr, &n2, &n3, &f2, &f3))
        return NULL;
    if (!PyCallable_Check(f2) || !PyCallable_Check(f3)) {
        PyErr_SetString(PyExc_TypeError, "configure() needs callable fallbacks");
        return NULL;
    }
    Py_XSETREF(ok_value, Py_NewRef(ok));
    Py_XSETREF(ok_reply, Py_NewRef(okr));
    Py_XSETREF(null2_reply, Py_NewRef(n2));
    Py_XSETREF(null3_reply, Py_NewRef(n3));
    Py_XSETREF(fallback2, Py_NewRef(f2));
    Py_XSETREF(fallback3, Py_NewRef(f3));
    Py_RETURN_NONE;
}

/* Whether a and b are bytes objects (exactly) of the same contents. */
static int
same_bytes(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (!PyBytes_CheckExact(a) || !PyBytes_CheckExact(b))
        return 0;
    Py_ssize_t size = PyBytes_GET_SIZE(a);
    return size == PyBytes_GET_SIZE(b)
        && memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)size) == 0;
}

PyDoc_STRVAR(run_end_doc,
"run_end(cmds, i, n, table, value) -> int\n\n"
"The first index from ``i`` on (before ``n``) whose request's name does not\n"
"map to ``value`` in ``table``: where a run of one command's requests ends.");

static PyObject *
run_end(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "run_end() takes 5 arguments");
        return NULL;
    }
    PyObject *cmds = args[0];
    PyObject *table = args[3];
    PyObject *value = args[4];
    if (!PyList_CheckExact(cmds) || !PyDict_CheckExact(table)) {
        PyErr_SetString(PyExc_TypeError, "run_end() needs a list and a dict");
        return NULL;
    }
    Py_ssize_t i = PyLong_AsSsize_t(args[1]);
    Py_ssize_t n = PyLong_AsSsize_t(args[2]);
    if ((i == -1 || n == -1) && PyErr_Occurred())
        return NULL;
    if (n > PyList_GET_SIZE(cmds))
        n = PyList_GET_SIZE(cmds);
    /* The name of a request already found in the run (borrowed: cmds holds it).
       A name spelled the same maps the same, so a pipeline of SETs costs one
       lookup: the parser's names are new bytes each, and hashing one costs
       more than comparing a few bytes. */
    PyObject *known = NULL;
    for (; i < n; i++) {
        PyObject *cmd = PyList_GET_ITEM(cmds, i);
        if (!PyList_CheckExact(cmd) || PyList_GET_SIZE(cmd) == 0)
            break;
        PyObject *name = PyList_GET_ITEM(cmd, 0);
        if (known != NULL && same_bytes(name, known))
            continue;
        PyObject *found = PyDict_GetItemWithError(table, name);
        if (found != value) {
            if (found == NULL && PyErr_Occurred())
                return NULL;
            break;
        }
        known = name;
    }
    return PyLong_FromSsize_t(i);
}

static PyMethodDef methods[] = {
    {"run_end", (PyCFunction)(void (*)(void))run_end, METH_FASTCALL, run_end_doc},
    {"parse", (PyCFunction)(void (*)(void))parse, METH_FASTCALL, parse_doc},
    {"encode", (PyCFunction)(void (*)(void))encode2, METH_FASTCALL | METH_KEYWORDS, encode_doc},
    {"encode3", (PyCFunction)(void (*)(void))encode3, METH_FASTCALL | METH_KEYWORDS, encode3_doc},
    {"configure", configure, METH_VARARGS, configure_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "redraft._cresp",
    "C fast paths of redraft.resp: request parsing, runs of one command, reply encoding.",
    -1,
    methods,
};

PyMODINIT_FUNC
PyInit__cresp(void)
{
    for (int i = 0; i < SMALL_INTS; i++) {
        int_replies[i] = PyBytes_FromFormat(":%d\r\n", i);
        if (int_replies[i] == NULL)
            return NULL;
    }
    return PyModule_Create(&module_def);
}
