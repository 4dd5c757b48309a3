/*
 * redraft.examples.clone._zorder: the order of a sorted set, in C.
 *
 * Order keeps (score, member) entries sorted as Redis sorts a sorted set: by
 * score (a double: -0.0 and 0.0 are equal, so such members sort by bytes),
 * then by member, memcmp over the shorter length and the shorter first (as
 * Python compares bytes).  It is a counted B+-tree: leaves hold up to
 * LEAF_MAX entries (a double and a member pointer, 16 bytes) in sorted
 * arrays, linked both ways; an inner node holds, per child, the number of
 * entries under it and its last entry, so a search by key or by rank is one
 * walk from the root, O(log n), and a slice is that walk and then the leaves.
 *
 * The root may be smaller than the other nodes and grows by realloc up to
 * their size, which keeps a small set small; every other node is allocated
 * whole.  A leaf that overflows splits in two halves, but at the end of the
 * set (the last leaf, an entry after all) it keeps its entries and the new
 * entry starts a leaf of its own: a set filled in order fills its leaves.  A
 * node that falls under a quarter full merges with a neighbour or takes
 * entries from it.  An insert allocates every node it may need before it
 * changes anything, so a MemoryError leaves the order as it was.
 *
 * Members are exact bytes objects, one reference each.  A bytes object
 * refers to nothing, so no reference cycle can pass through an Order (or its
 * iterators, which refer only to their Order): neither type takes part in
 * the garbage collector.  Scores are doubles; NaN is refused (Redis refuses
 * NaN scores, and it has no place in the order).  The last entry an inner
 * node keeps for a child borrows its member from the leaf that holds it and
 * is rewritten whenever that entry moves or goes.
 *
 * redraft.examples.clone.zset runs without this module (REDRAFT_PURE_PYTHON=1,
 * or no C compiler at install), on a Python order with the same methods.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <string.h>

#ifndef LEAF_MAX
#define LEAF_MAX 128
#endif
#ifndef INNER_MAX
#define INNER_MAX 32
#endif
#define LEAF_MIN (LEAF_MAX / 4)
#define INNER_MIN (INNER_MAX / 4)
#define MAX_DEPTH 40 /* inner levels: INNER_MIN ** 40 entries is far beyond memory */

typedef struct {
    double score;
    PyObject *member;
} Entry;

typedef struct Leaf {
    int n, cap;
    struct Leaf *prev, *next;
    Entry e[];
} Leaf;

typedef struct {
    Py_ssize_t count; /* entries under the child */
    Entry last;       /* its last entry, the member borrowed */
    void *child;      /* an Inner, or a Leaf on the lowest inner level */
} Slot;

typedef struct {
    int n, cap;
    Slot s[];
} Inner;

typedef struct {
    PyObject_HEAD
    void *root;     /* NULL when empty */
    Py_ssize_t len;
    size_t version; /* changed by every change: iterators check it */
    int height;     /* inner levels above the leaves */
} Order;

typedef struct {
    int depth;
    Inner *node[MAX_DEPTH];
    int idx[MAX_DEPTH];
} Path;

/* A position in the order: before every entry ``before`` says is. */
typedef struct {
    double score;
    PyObject *member; /* NULL: by score alone */
    int right;        /* after equal entries (or, by score alone, after that score) */
} Probe;

static PyTypeObject OrderType;
static PyTypeObject OrderIterType;

/* -- comparisons ------------------------------------------------------------------------ */

static inline int
member_cmp(PyObject *a, PyObject *b)
{
    if (a == b)
        return 0;
    Py_ssize_t la = PyBytes_GET_SIZE(a), lb = PyBytes_GET_SIZE(b);
    int c = memcmp(PyBytes_AS_STRING(a), PyBytes_AS_STRING(b), (size_t)(la < lb ? la : lb));
    if (c)
        return c;
    return (la > lb) - (la < lb);
}

static inline int
entry_cmp(const Entry *a, const Entry *b)
{
    if (a->score < b->score)
        return -1;
    if (a->score > b->score)
        return 1;
    return member_cmp(a->member, b->member);
}

static inline int
before(const Probe *p, const Entry *e)
{
    if (e->score < p->score)
        return 1;
    if (e->score > p->score)
        return 0;
    if (p->member == NULL)
        return p->right;
    int c = member_cmp(e->member, p->member);
    return p->right ? c <= 0 : c < 0;
}

/* -- nodes ------------------------------------------------------------------------------ */

static Leaf *
leaf_new(int cap)
{
    Leaf *l = PyMem_Malloc(sizeof(Leaf) + (size_t)cap * sizeof(Entry));
    if (l == NULL)
        return (Leaf *)PyErr_NoMemory();
    l->n = 0;
    l->cap = cap;
    l->prev = l->next = NULL;
    return l;
}

static Inner *
inner_new(int cap)
{
    Inner *in = PyMem_Malloc(sizeof(Inner) + (size_t)cap * sizeof(Slot));
    if (in == NULL)
        return (Inner *)PyErr_NoMemory();
    in->n = 0;
    in->cap = cap;
    return in;
}

static inline int
node_n(void *node, int is_leaf)
{
    return is_leaf ? ((Leaf *)node)->n : ((Inner *)node)->n;
}

static inline Entry
node_last(void *node, int is_leaf)
{
    if (is_leaf) {
        Leaf *l = node;
        return l->e[l->n - 1];
    }
    Inner *in = node;
    return in->s[in->n - 1].last;
}

static Py_ssize_t
node_total(void *node, int is_leaf)
{
    if (is_leaf)
        return ((Leaf *)node)->n;
    Inner *in = node;
    Py_ssize_t t = 0;
    for (int i = 0; i < in->n; i++)
        t += in->s[i].count;
    return t;
}

static inline Slot
slot_of(void *node, int is_leaf)
{
    Slot s = {node_total(node, is_leaf), node_last(node, is_leaf), node};
    return s;
}

/* Free a subtree; with ``decref``, drop the members' references too. */
static void
free_node(void *node, int levels, int decref)
{
    if (levels == 0) {
        Leaf *l = node;
        if (decref)
            for (int i = 0; i < l->n; i++)
                Py_DECREF(l->e[i].member);
    }
    else {
        Inner *in = node;
        for (int i = 0; i < in->n; i++)
            free_node(in->s[i].child, levels - 1, decref);
    }
    PyMem_Free(node);
}

static size_t
node_bytes(void *node, int levels)
{
    if (levels == 0)
        return sizeof(Leaf) + (size_t)((Leaf *)node)->cap * sizeof(Entry);
    Inner *in = node;
    size_t b = sizeof(Inner) + (size_t)in->cap * sizeof(Slot);
    for (int i = 0; i < in->n; i++)
        b += node_bytes(in->s[i].child, levels - 1);
    return b;
}

/* -- searching -------------------------------------------------------------------------- */

static inline int
leaf_find(const Leaf *l, const Probe *p)
{
    int lo = 0, hi = l->n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (before(p, &l->e[mid]))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static inline int
inner_find(const Inner *in, const Probe *p)
{
    int lo = 0, hi = in->n;
    while (lo < hi) {
        int mid = (lo + hi) >> 1;
        if (before(p, &in->s[mid].last))
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/*
 * The leaf that holds the probe's position (the last leaf if it is past the
 * end), the path to it, and the rank of the leaf's first entry.  The order
 * must not be empty.
 */
static Leaf *
descend_key(Order *self, const Probe *p, Path *path, Py_ssize_t *base)
{
    void *node = self->root;
    Py_ssize_t r = 0;
    path->depth = self->height;
    for (int d = 0; d < self->height; d++) {
        Inner *in = node;
        int i = inner_find(in, p);
        if (i == in->n)
            i = in->n - 1;
        for (int k = 0; k < i; k++)
            r += in->s[k].count;
        path->node[d] = in;
        path->idx[d] = i;
        node = in->s[i].child;
    }
    *base = r;
    return node;
}

/* The leaf that holds rank ``r`` (0 <= r < len), the path to it and the position in it. */
static Leaf *
descend_rank(Order *self, Py_ssize_t r, Path *path, int *pos)
{
    void *node = self->root;
    path->depth = self->height;
    for (int d = 0; d < self->height; d++) {
        Inner *in = node;
        int i = 0;
        while (i < in->n - 1 && r >= in->s[i].count) {
            r -= in->s[i].count;
            i++;
        }
        path->node[d] = in;
        path->idx[d] = i;
        node = in->s[i].child;
    }
    *pos = (int)r;
    return node;
}

/* The rank of the probe's position: how many entries lie before it. */
static Py_ssize_t
position(Order *self, const Probe *p)
{
    if (self->root == NULL)
        return 0;
    Path path;
    Py_ssize_t base;
    Leaf *leaf = descend_key(self, p, &path, &base);
    return base + leaf_find(leaf, p);
}

/* -- inserting -------------------------------------------------------------------------- */

static inline void
leaf_put(Leaf *l, int pos, Entry e)
{
    memmove(l->e + pos + 1, l->e + pos, (size_t)(l->n - pos) * sizeof(Entry));
    l->e[pos] = e;
    l->n++;
}

static inline void
inner_put(Inner *in, int pos, Slot s)
{
    memmove(in->s + pos + 1, in->s + pos, (size_t)(in->n - pos) * sizeof(Slot));
    in->s[pos] = s;
    in->n++;
}

/* Grow the root (a leaf if ``is_leaf``) to twice its room, at most a full node's. */
static int
grow_root(Order *self, int is_leaf)
{
    if (is_leaf) {
        Leaf *l = self->root;
        int cap = l->cap * 2 > LEAF_MAX ? LEAF_MAX : l->cap * 2;
        Leaf *g = PyMem_Realloc(l, sizeof(Leaf) + (size_t)cap * sizeof(Entry));
        if (g == NULL)
            return PyErr_NoMemory(), -1;
        g->cap = cap;
        self->root = g;
    }
    else {
        Inner *in = self->root;
        int cap = in->cap * 2 > INNER_MAX ? INNER_MAX : in->cap * 2;
        Inner *g = PyMem_Realloc(in, sizeof(Inner) + (size_t)cap * sizeof(Slot));
        if (g == NULL)
            return PyErr_NoMemory(), -1;
        g->cap = cap;
        self->root = g;
    }
    return 0;
}

/* Insert ``member`` (a new reference is taken) at ``score``, after equal entries. */
static int
insert(Order *self, double score, PyObject *member)
{
    Entry ent = {score, member};
    if (self->root == NULL) {
        Leaf *l = leaf_new(1);
        if (l == NULL)
            return -1;
        l->e[0] = ent;
        l->n = 1;
        self->root = l;
        self->height = 0;
    }
    else {
        Probe p = {score, member, 1};
        Path path;
        Py_ssize_t base;
        Leaf *leaf = descend_key(self, &p, &path, &base);
        int pos = leaf_find(leaf, &p);
        int depth = path.depth;
        /* Everything that can fail, first: room in the root, and every new node. */
        if (leaf->n == leaf->cap && leaf->cap < LEAF_MAX) {
            if (grow_root(self, 1) < 0)
                return -1;
            leaf = self->root;
        }
        Leaf *new_leaf = NULL;
        Inner *new_inner[MAX_DEPTH + 1];
        int splits = 0; /* inner nodes that split, from the lowest up; depth + 1: a new root too */
        if (leaf->n == leaf->cap) {
            if ((new_leaf = leaf_new(LEAF_MAX)) == NULL)
                return -1;
            for (int d = depth - 1; d >= 0; d--) {
                Inner *in = path.node[d];
                if (in->n < in->cap)
                    break;
                if (in->cap < INNER_MAX) { /* the root */
                    if (grow_root(self, 0) < 0)
                        goto fail;
                    path.node[0] = self->root;
                    break;
                }
                splits++;
            }
            int needed = splits == depth ? splits + 1 : splits;
            for (int k = 0; k < needed; k++) {
                int cap = k == depth ? 2 : INNER_MAX;
                if ((new_inner[k] = inner_new(cap)) == NULL) {
                    while (k--)
                        PyMem_Free(new_inner[k]);
                    goto fail;
                }
            }
        }
        /* Nothing fails from here on. */
        int rightmost = leaf->next == NULL && pos == leaf->n;
        void *sib = NULL;
        if (new_leaf == NULL) {
            leaf_put(leaf, pos, ent);
        }
        else {
            int keep = rightmost ? LEAF_MAX : LEAF_MAX / 2;
            memcpy(new_leaf->e, leaf->e + keep, (size_t)(LEAF_MAX - keep) * sizeof(Entry));
            new_leaf->n = LEAF_MAX - keep;
            leaf->n = keep;
            new_leaf->prev = leaf;
            new_leaf->next = leaf->next;
            if (leaf->next)
                leaf->next->prev = new_leaf;
            leaf->next = new_leaf;
            if (keep < LEAF_MAX && pos <= keep)
                leaf_put(leaf, pos, ent);
            else
                leaf_put(new_leaf, pos - keep, ent);
            sib = new_leaf;
        }
        void *child = leaf;
        int used = 0;
        for (int d = depth - 1; d >= 0; d--) {
            Inner *in = path.node[d];
            int i = path.idx[d];
            int is_leaf = d == depth - 1;
            if (sib == NULL) {
                in->s[i].count++;
                in->s[i].last = node_last(child, is_leaf);
            }
            else {
                in->s[i] = slot_of(child, is_leaf);
                Slot ns = slot_of(sib, is_leaf);
                if (in->n < in->cap) {
                    inner_put(in, i + 1, ns);
                    sib = NULL;
                }
                else {
                    Inner *r = new_inner[used++];
                    int keep = rightmost ? in->n : in->n / 2;
                    memcpy(r->s, in->s + keep, (size_t)(in->n - keep) * sizeof(Slot));
                    r->n = in->n - keep;
                    in->n = keep;
                    if (i + 1 <= keep && keep < INNER_MAX)
                        inner_put(in, i + 1, ns);
                    else
                        inner_put(r, i + 1 - keep, ns);
                    sib = r;
                }
            }
            child = in;
        }
        if (sib != NULL) { /* the root split: a new root above it */
            Inner *top = new_inner[used++];
            top->s[0] = slot_of(child, depth == 0);
            top->s[1] = slot_of(sib, depth == 0);
            top->n = 2;
            self->root = top;
            self->height++;
        }
        goto done;
    fail:
        PyMem_Free(new_leaf);
        return -1;
    }
done:
    Py_INCREF(member);
    self->len++;
    self->version++;
    return 0;
}

/* -- removing --------------------------------------------------------------------------- */

/* in->s[i]'s child fell under its minimum: merge it with a neighbour, or even them out. */
static void
rebalance(Inner *in, int i, int is_leaf)
{
    if (in->n == 1) {
        if (node_n(in->s[0].child, is_leaf) == 0) { /* an only child, empty */
            if (is_leaf) {
                Leaf *l = in->s[0].child;
                if (l->prev)
                    l->prev->next = l->next;
                if (l->next)
                    l->next->prev = l->prev;
            }
            PyMem_Free(in->s[0].child);
            in->n = 0;
        }
        return;
    }
    int j = i > 0 ? i - 1 : i + 1;
    int li = i < j ? i : j, ri = li + 1;
    Slot *ls = &in->s[li], *rs = &in->s[ri];
    if (is_leaf) {
        Leaf *L = ls->child, *R = rs->child;
        int a = L->n, b = R->n;
        if (a + b <= LEAF_MAX) {
            memcpy(L->e + a, R->e, (size_t)b * sizeof(Entry));
            L->n = a + b;
            L->next = R->next;
            if (R->next)
                R->next->prev = L;
            PyMem_Free(R);
            memmove(in->s + ri, in->s + ri + 1, (size_t)(in->n - ri - 1) * sizeof(Slot));
            in->n--;
        }
        else {
            int want = (a + b) / 2;
            if (a < want) {
                int k = want - a;
                memcpy(L->e + a, R->e, (size_t)k * sizeof(Entry));
                memmove(R->e, R->e + k, (size_t)(b - k) * sizeof(Entry));
                L->n += k;
                R->n -= k;
            }
            else {
                int k = a - want;
                memmove(R->e + k, R->e, (size_t)b * sizeof(Entry));
                memcpy(R->e, L->e + want, (size_t)k * sizeof(Entry));
                L->n -= k;
                R->n += k;
            }
            *rs = slot_of(R, 1);
        }
        *ls = slot_of(L, 1);
    }
    else {
        Inner *L = ls->child, *R = rs->child;
        int a = L->n, b = R->n;
        if (a + b <= INNER_MAX) {
            memcpy(L->s + a, R->s, (size_t)b * sizeof(Slot));
            L->n = a + b;
            PyMem_Free(R);
            memmove(in->s + ri, in->s + ri + 1, (size_t)(in->n - ri - 1) * sizeof(Slot));
            in->n--;
        }
        else {
            int want = (a + b) / 2;
            if (a < want) {
                int k = want - a;
                memcpy(L->s + a, R->s, (size_t)k * sizeof(Slot));
                memmove(R->s, R->s + k, (size_t)(b - k) * sizeof(Slot));
                L->n += k;
                R->n -= k;
            }
            else {
                int k = a - want;
                memmove(R->s + k, R->s, (size_t)b * sizeof(Slot));
                memcpy(R->s, L->s + want, (size_t)k * sizeof(Slot));
                L->n -= k;
                R->n += k;
            }
            in->s[ri] = slot_of(R, 0);
        }
        in->s[li] = slot_of(L, 0);
    }
}

/* Remove entries [pos, pos + m) of ``leaf`` (m >= 1), reached by ``path``. */
static void
erase(Order *self, Path *path, Leaf *leaf, int pos, int m)
{
    PyObject *gone[LEAF_MAX];
    for (int k = 0; k < m; k++)
        gone[k] = leaf->e[pos + k].member;
    memmove(leaf->e + pos, leaf->e + pos + m, (size_t)(leaf->n - pos - m) * sizeof(Entry));
    leaf->n -= m;
    int depth = path->depth;
    void *child = leaf;
    for (int d = depth - 1; d >= 0; d--) {
        Inner *in = path->node[d];
        int i = path->idx[d];
        int is_leaf = d == depth - 1;
        int n = node_n(child, is_leaf);
        in->s[i].count -= m;
        if (n > 0)
            in->s[i].last = node_last(child, is_leaf);
        if (n < (is_leaf ? LEAF_MIN : INNER_MIN))
            rebalance(in, i, is_leaf);
        child = in;
    }
    while (self->height > 0 && ((Inner *)self->root)->n <= 1) {
        Inner *top = self->root;
        if (top->n == 0) { /* everything went */
            PyMem_Free(top);
            self->root = NULL;
            self->height = 0;
            break;
        }
        self->root = top->s[0].child;
        self->height--;
        PyMem_Free(top);
    }
    if (self->root != NULL && self->height == 0 && ((Leaf *)self->root)->n == 0) {
        PyMem_Free(self->root);
        self->root = NULL;
    }
    self->len -= m;
    self->version++;
    for (int k = 0; k < m; k++)
        Py_DECREF(gone[k]);
}

static void
clear(Order *self)
{
    void *root = self->root;
    int height = self->height;
    self->root = NULL;
    self->height = 0;
    self->len = 0;
    self->version++;
    if (root != NULL)
        free_node(root, height, 1);
}

/* -- building from sorted entries ------------------------------------------------------- */

/*
 * Make ``self`` hold the ``n`` sorted entries of ``a`` (empty before), taking
 * their references.  On failure nothing is taken: the caller still owns them.
 */
static int
build(Order *self, Entry *a, Py_ssize_t n)
{
    if (n == 0)
        return 0;
    if (n <= LEAF_MAX) {
        Leaf *l = leaf_new((int)n);
        if (l == NULL)
            return -1;
        memcpy(l->e, a, (size_t)n * sizeof(Entry));
        l->n = (int)n;
        self->root = l;
        self->height = 0;
        self->len = n;
        self->version++;
        return 0;
    }
    /* The shape: nodes per level, leaves first, full but for an even share of the rest. */
    Py_ssize_t counts[MAX_DEPTH + 1];
    void **levels[MAX_DEPTH + 1];
    int nlevels = 0;
    counts[0] = (n + LEAF_MAX - 1) / LEAF_MAX;
    while (counts[nlevels] > 1) {
        counts[nlevels + 1] = (counts[nlevels] + INNER_MAX - 1) / INNER_MAX;
        nlevels++;
    }
    /* nlevels inner levels above the leaves; level nlevels holds the root alone. */
    int made = 0;
    for (int lv = 0; lv <= nlevels; lv++) {
        levels[lv] = PyMem_Calloc((size_t)counts[lv], sizeof(void *));
        if (levels[lv] == NULL) {
            PyErr_NoMemory();
            goto fail;
        }
        made = lv + 1;
        for (Py_ssize_t k = 0; k < counts[lv]; k++) {
            void *node;
            if (lv == 0)
                node = leaf_new(LEAF_MAX);
            else if (lv == nlevels)
                node = inner_new((int)counts[lv - 1]);
            else
                node = inner_new(INNER_MAX);
            if (node == NULL)
                goto fail;
            levels[lv][k] = node;
        }
    }
    /* Fill: nothing fails from here on. */
    Py_ssize_t at = 0, per = n / counts[0], extra = n % counts[0];
    for (Py_ssize_t k = 0; k < counts[0]; k++) {
        Leaf *l = levels[0][k];
        int take = (int)(per + (k < extra));
        memcpy(l->e, a + at, (size_t)take * sizeof(Entry));
        l->n = take;
        at += take;
        l->prev = k ? levels[0][k - 1] : NULL;
        l->next = k + 1 < counts[0] ? levels[0][k + 1] : NULL;
    }
    for (int lv = 1; lv <= nlevels; lv++) {
        Py_ssize_t below = counts[lv - 1], c = 0;
        per = below / counts[lv];
        extra = below % counts[lv];
        for (Py_ssize_t k = 0; k < counts[lv]; k++) {
            Inner *in = levels[lv][k];
            int take = (int)(per + (k < extra));
            for (int t = 0; t < take; t++)
                in->s[t] = slot_of(levels[lv - 1][c++], lv == 1);
            in->n = take;
        }
    }
    self->root = levels[nlevels][0];
    self->height = nlevels;
    self->len = n;
    self->version++;
    for (int lv = 0; lv <= nlevels; lv++)
        PyMem_Free(levels[lv]);
    return 0;
fail:
    for (int lv = 0; lv < made; lv++) {
        for (Py_ssize_t k = 0; k < counts[lv]; k++)
            PyMem_Free(levels[lv][k]);
        PyMem_Free(levels[lv]);
    }
    return -1;
}

static int
sort_cmp(const void *a, const void *b)
{
    return entry_cmp(a, b);
}

/* -- arguments -------------------------------------------------------------------------- */

static int
get_score(PyObject *o, double *out)
{
    double s;
    if (PyFloat_CheckExact(o))
        s = PyFloat_AS_DOUBLE(o);
    else {
        s = PyFloat_AsDouble(o);
        if (s == -1.0 && PyErr_Occurred())
            return -1;
    }
    if (isnan(s)) {
        PyErr_SetString(PyExc_ValueError, "a score cannot be NaN");
        return -1;
    }
    *out = s;
    return 0;
}

static int
get_member(PyObject *o)
{
    if (!PyBytes_CheckExact(o)) {
        PyErr_Format(PyExc_TypeError, "a member must be bytes, not %.200s", Py_TYPE(o)->tp_name);
        return -1;
    }
    return 0;
}

static int
get_pair(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t most, const char *name,
         double *score)
{
    if (nargs < 2 || nargs > most) {
        PyErr_Format(PyExc_TypeError, "%s() takes from 2 to %zd arguments (%zd given)", name, most,
                     nargs);
        return -1;
    }
    if (get_score(args[0], score) < 0 || get_member(args[1]) < 0)
        return -1;
    return 0;
}

static int
get_flag(PyObject *const *args, Py_ssize_t nargs, Py_ssize_t at)
{
    return nargs > at ? PyObject_IsTrue(args[at]) : 0;
}

/*
 * The bounds of a slice [lo:hi], as given (they may run Python code, so they
 * are read before anything of the order is), to be clamped with
 * PySlice_AdjustIndices against the length after every argument is read.
 */
static int
get_span(PyObject *const *args, Py_ssize_t *lo, Py_ssize_t *hi)
{
    *lo = PyNumber_AsSsize_t(args[0], PyExc_OverflowError);
    if (*lo == -1 && PyErr_Occurred())
        return -1;
    *hi = PyNumber_AsSsize_t(args[1], PyExc_OverflowError);
    if (*hi == -1 && PyErr_Occurred())
        return -1;
    return 0;
}

/*
 * The tuple (score, member), or (member, score) if ``member_first``.  The
 * entry is read before allocating: an allocation may run the garbage
 * collector, and a finalizer may change the order.
 */
static PyObject *
pair(const Entry *e, int member_first)
{
    double score = e->score;
    PyObject *member = Py_NewRef(e->member);
    PyObject *s = PyFloat_FromDouble(score);
    PyObject *t = s ? PyTuple_New(2) : NULL;
    if (t == NULL) {
        Py_XDECREF(s);
        Py_DECREF(member);
        return NULL;
    }
    PyTuple_SET_ITEM(t, member_first ? 1 : 0, s);
    PyTuple_SET_ITEM(t, member_first ? 0 : 1, member);
    return t;
}

/* -- the type --------------------------------------------------------------------------- */

static PyObject *
order_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    PyObject *pairs = NULL;
    static char *kwlist[] = {"pairs", NULL};
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|O:Order", kwlist, &pairs))
        return NULL;
    Order *self = (Order *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->root = NULL;
    self->len = 0;
    self->version = 0;
    self->height = 0;
    if (pairs == NULL)
        return (PyObject *)self;
    PyObject *seq = PySequence_Fast(pairs, "Order() takes an iterable of (score, member) pairs");
    if (seq == NULL)
        goto fail;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    Entry *a = PyMem_Malloc((size_t)(n ? n : 1) * sizeof(Entry));
    if (a == NULL) {
        Py_DECREF(seq);
        PyErr_NoMemory();
        goto fail;
    }
    Py_ssize_t got = 0;
    int sorted = 1;
    for (; got < n; got++) {
        PyObject *item = PySequence_Fast_GET_ITEM(seq, got);
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2) {
            PyErr_SetString(PyExc_TypeError, "Order() takes (score, member) pairs");
            break;
        }
        double s;
        PyObject *m = PyTuple_GET_ITEM(item, 1);
        if (get_score(PyTuple_GET_ITEM(item, 0), &s) < 0 || get_member(m) < 0)
            break;
        a[got].score = s;
        a[got].member = Py_NewRef(m);
        if (got && sorted && entry_cmp(&a[got - 1], &a[got]) > 0)
            sorted = 0;
    }
    Py_DECREF(seq);
    if (got == n) {
        if (!sorted)
            qsort(a, (size_t)n, sizeof(Entry), sort_cmp);
        if (build(self, a, n) == 0) {
            PyMem_Free(a);
            return (PyObject *)self;
        }
    }
    for (Py_ssize_t k = 0; k < got; k++)
        Py_DECREF(a[k].member);
    PyMem_Free(a);
fail:
    Py_DECREF(self);
    return NULL;
}

static void
order_dealloc(Order *self)
{
    clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static Py_ssize_t
order_len(Order *self)
{
    return self->len;
}

static PyObject *
order_item(Order *self, Py_ssize_t i)
{
    if (i < 0 || i >= self->len) {
        PyErr_SetString(PyExc_IndexError, "Order index out of range");
        return NULL;
    }
    Path path;
    int pos;
    Leaf *leaf = descend_rank(self, i, &path, &pos);
    return pair(&leaf->e[pos], 0);
}

PyDoc_STRVAR(put_doc, "put(score, member, /) -> None\n\nInsert an entry (after equal ones).");

static PyObject *
order_put(Order *self, PyObject *const *args, Py_ssize_t nargs)
{
    double score;
    if (get_pair(args, nargs, 2, "put", &score) < 0 || insert(self, score, args[1]) < 0)
        return NULL;
    Py_RETURN_NONE;
}

/* The entry (score, member) must be there: its leaf, path and position, or ValueError. */
static Leaf *
find_entry(Order *self, double score, PyObject *member, Path *path, int *pos, Py_ssize_t *rank)
{
    if (self->root != NULL) {
        Probe p = {score, member, 0};
        Py_ssize_t base;
        Leaf *leaf = descend_key(self, &p, path, &base);
        int i = leaf_find(leaf, &p);
        if (i < leaf->n && leaf->e[i].score == score && member_cmp(leaf->e[i].member, member) == 0) {
            *pos = i;
            *rank = base + i;
            return leaf;
        }
    }
    PyErr_SetString(PyExc_ValueError, "(score, member) is not in the order");
    return NULL;
}

PyDoc_STRVAR(drop_doc, "drop(score, member, /) -> None\n\nRemove an entry; ValueError if absent.");

static PyObject *
order_drop(Order *self, PyObject *const *args, Py_ssize_t nargs)
{
    double score;
    Path path;
    int pos;
    Py_ssize_t rank;
    if (get_pair(args, nargs, 2, "drop", &score) < 0)
        return NULL;
    Leaf *leaf = find_entry(self, score, args[1], &path, &pos, &rank);
    if (leaf == NULL)
        return NULL;
    erase(self, &path, leaf, pos, 1);
    Py_RETURN_NONE;
}

PyDoc_STRVAR(rank_doc, "rank(score, member, /) -> int\n\nAn entry's 0-based rank; ValueError if absent.");

static PyObject *
order_rank(Order *self, PyObject *const *args, Py_ssize_t nargs)
{
    double score;
    Path path;
    int pos;
    Py_ssize_t rank;
    if (get_pair(args, nargs, 2, "rank", &score) < 0)
        return NULL;
    if (find_entry(self, score, args[1], &path, &pos, &rank) == NULL)
        return NULL;
    return PyLong_FromSsize_t(rank);
}

PyDoc_STRVAR(bisect_pair_doc,
"bisect_pair(score, member, right=False, /) -> int\n\n"
"How many entries sort before (score, member) (or, with ``right``, not after it).");

static PyObject *
order_bisect_pair(Order *self, PyObject *const *args, Py_ssize_t nargs)
{
    double score;
    if (get_pair(args, nargs, 3, "bisect_pair", &score) < 0)
        return NULL;
    int right = get_flag(args, nargs, 2);
    if (right < 0)
        return NULL;
    Probe p = {score, args[1], right};
    return PyLong_FromSsize_t(position(self, &p));
}

PyDoc_STRVAR(bisect_score_doc,
"bisect_score(score, above=False, /) -> int\n\n"
"How many entries score below ``score`` (or, with ``above``, at most ``score``).");

static PyObject *
order_bisect_score(Order *self, PyObject *const *args, Py_ssize_t nargs)
{
    double score;
    if (nargs < 1 || nargs > 2) {
        PyErr_Format(PyExc_TypeError, "bisect_score() takes 1 or 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (get_score(args[0], &score) < 0)
        return NULL;
    int above = get_flag(args, nargs, 1);
    if (above < 0)
        return NULL;
    Probe p = {score, NULL, above};
    return PyLong_FromSsize_t(position(self, &p));
}

PyDoc_STRVAR(items_doc,
"items(lo, hi, reverse=False, /) -> list[tuple[bytes, float]]\n\n"
"(member, score) of the entries of ranks [lo:hi] (a slice's bounds), highest first\n"
"with ``reverse``.");

static PyObject *
order_items(Order *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t lo, hi;
    if (nargs < 2 || nargs > 3) {
        PyErr_Format(PyExc_TypeError, "items() takes 2 or 3 arguments (%zd given)", nargs);
        return NULL;
    }
    if (get_span(args, &lo, &hi) < 0)
        return NULL;
    int reverse = get_flag(args, nargs, 2);
    if (reverse < 0)
        return NULL;
    PySlice_AdjustIndices(self->len, &lo, &hi, 1);
    Py_ssize_t k = hi > lo ? hi - lo : 0;
    size_t version = self->version;
    PyObject *out = PyList_New(k);
    if (out == NULL || k == 0)
        return out;
    if (self->version != version) { /* a finalizer run by the allocation */
        Py_DECREF(out);
        PyErr_SetString(PyExc_RuntimeError, "Order changed during items()");
        return NULL;
    }
    Path path;
    int pos;
    Leaf *leaf = descend_rank(self, reverse ? hi - 1 : lo, &path, &pos);
    for (Py_ssize_t t = 0; t < k; t++) {
        PyObject *item = pair(&leaf->e[pos], 1);
        if (item != NULL && self->version != version) {
            Py_DECREF(item);
            PyErr_SetString(PyExc_RuntimeError, "Order changed during items()");
            item = NULL;
        }
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, t, item);
        if (reverse) {
            if (--pos < 0 && leaf->prev) {
                leaf = leaf->prev;
                pos = leaf->n - 1;
            }
        }
        else if (++pos == leaf->n && leaf->next) {
            leaf = leaf->next;
            pos = 0;
        }
    }
    return out;
}

PyDoc_STRVAR(cut_doc,
"cut(lo, hi, /) -> list[bytes]\n\n"
"Remove the entries of ranks [lo:hi] (a slice's bounds); their members, in order.");

static PyObject *
order_cut(Order *self, PyObject *const *args, Py_ssize_t nargs)
{
    Py_ssize_t lo, hi;
    if (nargs != 2) {
        PyErr_Format(PyExc_TypeError, "cut() takes 2 arguments (%zd given)", nargs);
        return NULL;
    }
    if (get_span(args, &lo, &hi) < 0)
        return NULL;
    PySlice_AdjustIndices(self->len, &lo, &hi, 1);
    Py_ssize_t k = hi > lo ? hi - lo : 0;
    size_t version = self->version;
    PyObject *out = PyList_New(k);
    if (out == NULL || k == 0)
        return out;
    if (self->version != version) { /* a finalizer run by the allocation */
        Py_DECREF(out);
        PyErr_SetString(PyExc_RuntimeError, "Order changed during cut()");
        return NULL;
    }
    Path path;
    int pos;
    Leaf *leaf = descend_rank(self, lo, &path, &pos);
    for (Py_ssize_t t = 0; t < k; t++) {
        PyList_SET_ITEM(out, t, Py_NewRef(leaf->e[pos].member));
        if (++pos == leaf->n && leaf->next) {
            leaf = leaf->next;
            pos = 0;
        }
    }
    if (k == self->len) {
        clear(self);
        return out;
    }
    while (k > 0) {
        leaf = descend_rank(self, lo, &path, &pos);
        int m = leaf->n - pos < k ? leaf->n - pos : (int)k;
        erase(self, &path, leaf, pos, m);
        k -= m;
    }
    return out;
}

PyDoc_STRVAR(copy_doc, "copy() -> Order\n\nAn independent copy.");

static PyObject *
order_copy(Order *self, PyObject *Py_UNUSED(ignored))
{
    Order *c = (Order *)OrderType.tp_alloc(&OrderType, 0);
    if (c == NULL)
        return NULL;
    c->root = NULL;
    c->len = c->height = 0;
    c->version = 0;
    Py_ssize_t n = self->len;
    if (n == 0)
        return (PyObject *)c;
    Entry *a = PyMem_Malloc((size_t)n * sizeof(Entry));
    if (a == NULL) {
        Py_DECREF(c);
        return PyErr_NoMemory();
    }
    Path path;
    int pos;
    Leaf *leaf = descend_rank(self, 0, &path, &pos);
    Py_ssize_t t = 0;
    for (; leaf != NULL; leaf = leaf->next)
        for (int i = 0; i < leaf->n; i++)
            a[t++] = leaf->e[i];
    if (build(c, a, n) < 0) {
        PyMem_Free(a);
        Py_DECREF(c);
        return NULL;
    }
    for (t = 0; t < n; t++)
        Py_INCREF(a[t].member);
    PyMem_Free(a);
    return (PyObject *)c;
}

PyDoc_STRVAR(sizeof_doc, "__sizeof__() -> int\n\nBytes of the object and its nodes.");

static PyObject *
order_sizeof(Order *self, PyObject *Py_UNUSED(ignored))
{
    size_t b = (size_t)Py_TYPE(self)->tp_basicsize;
    if (self->root != NULL)
        b += node_bytes(self->root, self->height);
    return PyLong_FromSize_t(b);
}

/* The tree's invariants, for the tests: counts, last entries, order, links, depths. */
static Py_ssize_t
check_node(void *node, int levels, int is_root, const Entry **prev, Leaf **prev_leaf)
{
    if (levels == 0) {
        Leaf *l = node;
        if (l->n < 1 || l->n > l->cap || l->cap > LEAF_MAX || (!is_root && l->cap != LEAF_MAX))
            return -1;
        if (l->prev != *prev_leaf || (*prev_leaf && (*prev_leaf)->next != l))
            return -1;
        for (int i = 0; i < l->n; i++) {
            if (*prev && entry_cmp(*prev, &l->e[i]) > 0)
                return -1;
            *prev = &l->e[i];
        }
        *prev_leaf = l;
        return l->n;
    }
    Inner *in = node;
    if (in->n < (is_root ? 2 : 1) || in->n > in->cap || in->cap > INNER_MAX ||
        (!is_root && in->cap != INNER_MAX))
        return -1;
    Py_ssize_t total = 0;
    for (int i = 0; i < in->n; i++) {
        Py_ssize_t c = check_node(in->s[i].child, levels - 1, 0, prev, prev_leaf);
        if (c < 0 || c != in->s[i].count || (*prev)->member != in->s[i].last.member ||
            (*prev)->score != in->s[i].last.score)
            return -1;
        total += c;
    }
    return total;
}

static PyObject *
order_check(Order *self, PyObject *Py_UNUSED(ignored))
{
    const Entry *prev = NULL;
    Leaf *prev_leaf = NULL;
    if (self->root == NULL) {
        if (self->len != 0 || self->height != 0)
            goto bad;
        Py_RETURN_NONE;
    }
    if (check_node(self->root, self->height, 1, &prev, &prev_leaf) != self->len ||
        prev_leaf->next != NULL)
        goto bad;
    Py_RETURN_NONE;
bad:
    PyErr_SetString(PyExc_AssertionError, "the order's tree is inconsistent");
    return NULL;
}

static PyObject *order_iter(Order *self);

static PyMethodDef order_methods[] = {
    {"put", (PyCFunction)(void (*)(void))order_put, METH_FASTCALL, put_doc},
    {"drop", (PyCFunction)(void (*)(void))order_drop, METH_FASTCALL, drop_doc},
    {"rank", (PyCFunction)(void (*)(void))order_rank, METH_FASTCALL, rank_doc},
    {"bisect_pair", (PyCFunction)(void (*)(void))order_bisect_pair, METH_FASTCALL, bisect_pair_doc},
    {"bisect_score", (PyCFunction)(void (*)(void))order_bisect_score, METH_FASTCALL,
     bisect_score_doc},
    {"items", (PyCFunction)(void (*)(void))order_items, METH_FASTCALL, items_doc},
    {"cut", (PyCFunction)(void (*)(void))order_cut, METH_FASTCALL, cut_doc},
    {"copy", (PyCFunction)order_copy, METH_NOARGS, copy_doc},
    {"__sizeof__", (PyCFunction)order_sizeof, METH_NOARGS, sizeof_doc},
    {"_check", (PyCFunction)order_check, METH_NOARGS, "Check the tree's invariants (tests)."},
    {NULL, NULL, 0, NULL},
};

static PySequenceMethods order_as_sequence = {
    .sq_length = (lenfunc)order_len,
    .sq_item = (ssizeargfunc)order_item,
};

PyDoc_STRVAR(order_doc,
"Order(pairs=(), /)\n\n"
"(score, member) entries in Redis's order, member bytes and score a double:\n"
"a counted B+-tree (see the module notes).");

static PyTypeObject OrderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "redraft.examples.clone._zorder.Order",
    .tp_basicsize = sizeof(Order),
    .tp_dealloc = (destructor)order_dealloc,
    .tp_as_sequence = &order_as_sequence,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = order_doc,
    .tp_iter = (getiterfunc)order_iter,
    .tp_methods = order_methods,
    .tp_new = order_new,
};

/* -- iteration -------------------------------------------------------------------------- */

typedef struct {
    PyObject_HEAD
    Order *order;
    Leaf *leaf; /* NULL: done */
    int pos;
    size_t version;
} OrderIter;

static PyObject *
order_iter(Order *self)
{
    OrderIter *it = PyObject_New(OrderIter, &OrderIterType);
    if (it == NULL)
        return NULL;
    it->order = (Order *)Py_NewRef(self);
    it->version = self->version;
    it->pos = 0;
    it->leaf = NULL;
    if (self->root != NULL) {
        Path path;
        it->leaf = descend_rank(self, 0, &path, &it->pos);
    }
    return (PyObject *)it;
}

static PyObject *
iter_next(OrderIter *it)
{
    if (it->leaf == NULL)
        return NULL;
    if (it->version != it->order->version) {
        it->leaf = NULL;
        PyErr_SetString(PyExc_RuntimeError, "Order changed during iteration");
        return NULL;
    }
    PyObject *out = pair(&it->leaf->e[it->pos], 0);
    if (out == NULL)
        return NULL;
    if (it->version != it->order->version) { /* a finalizer run by the allocation */
        Py_DECREF(out);
        it->leaf = NULL;
        PyErr_SetString(PyExc_RuntimeError, "Order changed during iteration");
        return NULL;
    }
    if (++it->pos == it->leaf->n) {
        it->leaf = it->leaf->next;
        it->pos = 0;
    }
    return out;
}

static void
iter_dealloc(OrderIter *it)
{
    Py_DECREF(it->order);
    PyObject_Free(it);
}

static PyTypeObject OrderIterType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "redraft.examples.clone._zorder.OrderIterator",
    .tp_basicsize = sizeof(OrderIter),
    .tp_dealloc = (destructor)iter_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_iter = PyObject_SelfIter,
    .tp_iternext = (iternextfunc)iter_next,
};

/* -- the module ------------------------------------------------------------------------- */

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    "redraft.examples.clone._zorder",
    "The order of the clone's sorted sets, in C: a counted B+-tree.",
    -1,
    NULL,
    NULL,
    NULL,
    NULL,
    NULL,
};

PyMODINIT_FUNC
PyInit__zorder(void)
{
    if (PyType_Ready(&OrderType) < 0 || PyType_Ready(&OrderIterType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Order", (PyObject *)&OrderType) < 0 ||
        PyModule_AddIntConstant(m, "LEAF_MAX", LEAF_MAX) < 0 ||
        PyModule_AddIntConstant(m, "INNER_MAX", INNER_MAX) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
