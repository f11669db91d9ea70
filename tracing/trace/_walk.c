/* The bounded trace walk of `tracing.trace.walk.trace_graph_python`, compiled: the same walk over the transfer graph's
 * adjacency arrays, by node and edge ids, with the same selection per address as `TransferGraph.select`.
 *
 * Optional: `tracing.trace.compiled` falls back to the pure-Python walk when this module is not built, and for graphs or
 * parameters it does not handle (it returns None then). Labels are looked up through a Python callback once per hop,
 * or read from per-node marks (0: no label, 1: labelled, 2: labelled service where the trace stops) when the caller
 * passes them (`LabelCache.node_marks`: no callback at all); an address whose counterparties must be ranked (a fan-out cut) is selected by a Python callback
 * (`TransferGraph.select`), so ranking rules live in one place.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

enum { ST_EXPANDED = 0, ST_SERVICE = 1, ST_BUSY = 2, ST_HOP_BUDGET = 3, ST_NODE_BUDGET = 4, ST_NO_DATA = 5 };
enum { CUT_FANOUT = 0, CUT_SCAN = 1, CUT_BUSY = 2, CUT_BUDGET = 3 };
#define NO_TIME INT64_MIN
#define BATCH 16
#define MAX_TOKENS_PER_NODE 16
#define PREFETCH 64

/* --- correctly rounded value / 10**decimals, as Python's int / int ------------------------------------------- */

static int bitlen128(u128 v) {
    uint64_t hi = (uint64_t)(v >> 64);
    if (hi) return 128 - __builtin_clzll(hi);
    uint64_t lo = (uint64_t)v;
    return lo ? 64 - __builtin_clzll(lo) : 0;
}

static double div_round(u128 v, uint64_t d) {
    if (v == 0) return 0.0;
    if (v <= ((u128)1 << 53) && d <= (1ULL << 53)) return (double)(uint64_t)v / (double)d;
    int shift = bitlen128(v) - bitlen128(d) - 55;
    int inexact = 0;
    u128 x;
    if (shift >= 0) {
        x = v >> shift;
        if (shift && (v & (((u128)1 << shift) - 1))) inexact = 1;
    } else {
        x = v << (-shift);
    }
    u128 q = x / d;
    if (x % d) inexact = 1;
    int extra = bitlen128(q) - 53;
    u128 low = q & (((u128)1 << extra) - 1), half = (u128)1 << (extra - 1);
    q >>= extra;
    if (low > half || (low == half && (inexact || (q & 1)))) q += 1;
    return ldexp((double)(uint64_t)q, shift + extra);
}

static const uint64_t POW10[20] = {1ULL,
                                   10ULL,
                                   100ULL,
                                   1000ULL,
                                   10000ULL,
                                   100000ULL,
                                   1000000ULL,
                                   10000000ULL,
                                   100000000ULL,
                                   1000000000ULL,
                                   10000000000ULL,
                                   100000000000ULL,
                                   1000000000000ULL,
                                   10000000000000ULL,
                                   100000000000000ULL,
                                   1000000000000000ULL,
                                   10000000000000000ULL,
                                   100000000000000000ULL,
                                   1000000000000000000ULL,
                                   10000000000000000000ULL};

static PyObject *u128_to_py(u128 v) {
    uint64_t hi = (uint64_t)(v >> 64), lo = (uint64_t)v;
    if (!hi) return PyLong_FromUnsignedLongLong(lo);
    PyObject *h = PyLong_FromUnsignedLongLong(hi), *l = PyLong_FromUnsignedLongLong(lo), *s = NULL, *r = NULL;
    PyObject *sixty_four = PyLong_FromLong(64);
    if (h && l && sixty_four && (s = PyNumber_Lshift(h, sixty_four))) r = PyNumber_Or(s, l);
    Py_XDECREF(h);
    Py_XDECREF(l);
    Py_XDECREF(s);
    Py_XDECREF(sixty_four);
    return r;
}

/* --- growable buffers and an int32 -> int32 hash map -------------------------------------------------------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap, item;
} Vec;

static int vec_push(Vec *v, const void *x) {
    if (v->len == v->cap) {
        Py_ssize_t cap = v->cap ? 2 * v->cap : 64;
        char *data = realloc(v->data, (size_t)(cap * v->item));
        if (!data) return -1;
        v->data = data;
        v->cap = cap;
    }
    memcpy(v->data + v->len * v->item, x, (size_t)v->item);
    v->len++;
    return 0;
}
#define VEC(type) {NULL, 0, 0, sizeof(type)}
#define AT(vec, type, i) (((type *)(vec).data)[i])

typedef struct {
    int32_t *keys, *vals;
    uint32_t *gens;
    uint32_t gen;
    size_t cap, used;
} Map;

static int map_init(Map *m, size_t cap) {
    size_t c = 64;
    while (c < 2 * cap) c <<= 1;
    m->keys = malloc(c * sizeof(int32_t));
    m->vals = malloc(c * sizeof(int32_t));
    m->gens = calloc(c, sizeof(uint32_t));
    m->gen = 1;
    m->cap = c;
    m->used = 0;
    return (m->keys && m->vals && m->gens) ? 0 : -1;
}

static void map_free(Map *m) {
    free(m->keys);
    free(m->vals);
    free(m->gens);
}

static void map_clear(Map *m) {
    m->used = 0;
    if (++m->gen == 0) {
        memset(m->gens, 0, m->cap * sizeof(uint32_t));
        m->gen = 1;
    }
}

static inline size_t map_slot(const Map *m, int32_t key) {
    size_t i = ((uint32_t)key * 2654435761u) & (m->cap - 1);
    while (m->gens[i] == m->gen && m->keys[i] != key) i = (i + 1) & (m->cap - 1);
    return i;
}

static int32_t map_get(const Map *m, int32_t key, int32_t missing) {
    size_t i = map_slot(m, key);
    return m->gens[i] == m->gen ? m->vals[i] : missing;
}

static int map_put(Map *m, int32_t key, int32_t val);

static int map_grow(Map *m) {
    Map bigger;
    if (map_init(&bigger, m->cap) < 0) {
        map_free(&bigger);
        return -1;
    }
    for (size_t i = 0; i < m->cap; i++)
        if (m->gens[i] == m->gen) map_put(&bigger, m->keys[i], m->vals[i]);
    map_free(m);
    *m = bigger;
    return 0;
}

/* Insert or overwrite; returns 1 when the key was new, 0 when it existed, -1 on memory error. */
static int map_put(Map *m, int32_t key, int32_t val) {
    size_t i = map_slot(m, key);
    if (m->gens[i] == m->gen) {
        m->vals[i] = val;
        return 0;
    }
    if (2 * (m->used + 1) > m->cap) {
        if (map_grow(m) < 0) return -1;
        i = map_slot(m, key);
    }
    m->gens[i] = m->gen;
    m->keys[i] = key;
    m->vals[i] = val;
    m->used++;
    return 1;
}

/* --- the walk ------------------------------------------------------------------------------------------------ */

typedef struct {
    int32_t node, hop;
    int64_t arrived, degree;
    int8_t stop;
    double weight;
    int32_t parent; /* the followed edge of largest weight into the node at its hop; -1: none (the root) */
    int64_t parent_ts;
    int8_t tie; /* another edge of that weight and time: the result's edge order decides (in Python) */
} Reached;

typedef struct {
    int32_t node, hop, reason;
    int64_t kept, dropped;
} CutRec;

typedef struct {
    /* graph columns */
    const int64_t *off;
    const int32_t *adj;
    const int64_t *stamps;
    const int32_t *far;
    const int64_t *ts;
    const uint64_t *vlo, *vhi;
    const int32_t *token;
    const uint8_t *srccol;
    const int32_t *tokdec;
    const uint64_t *thr_lo, *thr_hi;
    Py_ssize_t n_nodes, n_edges, n_tokens;
    PyObject *names;
    /* parameters */
    int outgoing, hops, follow_time, filter_mode, use_thresh;
    int32_t wanted, root;
    int64_t since, until, fanout, max_nodes, scan_limit, hub_degree;
    PyObject *label_cb, *select_cb;
    const uint8_t *marks; /* NULL: labels through label_cb */
    Py_ssize_t n_marks;
    /* state */
    Vec labelled; /* with marks: the reached nodes (not the root) that have a label, in the order reached */
    Vec reached, followed, followed_hop, cuts, totals, party_sums, order, order_tmp;
    Map index, seen, parties;
    uint8_t sources[256];
    int unsupported;
} Walk;

static int name_less(Walk *w, int32_t a, int32_t b) {
    PyObject *x = PyList_GET_ITEM(w->names, a), *y = PyList_GET_ITEM(w->names, b);
    return PyUnicode_Compare(x, y) < 0;
}

/* frontier order: largest weight first, then address (as `frontier.sort(key=(-weight, name))`) */
static int frontier_less(Walk *w, int32_t a, int32_t b) {
    Reached *ra = &AT(w->reached, Reached, map_get(&w->index, a, 0));
    Reached *rb = &AT(w->reached, Reached, map_get(&w->index, b, 0));
    if (ra->weight != rb->weight) return ra->weight > rb->weight;
    return name_less(w, a, b);
}

typedef int (*LessFn)(Walk *, int32_t, int32_t);

/* a stable merge sort of node or party ids under `less` (insertion sort for short runs) */
static void sort_ids(Walk *w, int32_t *items, int32_t *tmp, Py_ssize_t n, LessFn less) {
    if (n < 2) return;
    if (n <= 12) {
        for (Py_ssize_t i = 1; i < n; i++) {
            int32_t x = items[i];
            Py_ssize_t j = i;
            while (j > 0 && less(w, x, items[j - 1])) {
                items[j] = items[j - 1];
                j--;
            }
            items[j] = x;
        }
        return;
    }
    Py_ssize_t mid = n / 2;
    sort_ids(w, items, tmp, mid, less);
    sort_ids(w, items + mid, tmp, n - mid, less);
    Py_ssize_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) tmp[k++] = less(w, items[j], items[i]) ? items[j++] : items[i++];
    while (i < mid) tmp[k++] = items[i++];
    while (j < n) tmp[k++] = items[j++];
    memcpy(items, tmp, (size_t)n * sizeof(int32_t));
}

typedef struct {
    int32_t party;
    int32_t keep;
    u128 sum;
} PartyRec;

/* counterparty ranking of `rank_counterparties` for one asset: largest amount first, then address */
static int party_less(Walk *w, int32_t a, int32_t b) {
    PartyRec *x = &AT(w->party_sums, PartyRec, a), *y = &AT(w->party_sums, PartyRec, b);
    if (x->sum != y->sum) return x->sum > y->sum;
    return name_less(w, x->party, y->party);
}

static Reached *reached_of(Walk *w, int32_t node) {
    int32_t i = map_get(&w->index, node, -1);
    return i < 0 ? NULL : &AT(w->reached, Reached, i);
}

static int add_cut(Walk *w, int32_t node, int32_t hop, int32_t reason, int64_t kept, int64_t dropped) {
    CutRec c = {node, hop, reason, kept, dropped};
    return vec_push(&w->cuts, &c);
}

static int64_t lower_bound(const int64_t *a, int64_t lo, int64_t hi, int64_t x) {
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] < x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int64_t upper_bound(const int64_t *a, int64_t lo, int64_t hi, int64_t x) {
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (a[mid] <= x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

static int store_totals(Walk *w, int32_t node, PyObject *dict) {
    PyObject *pair = Py_BuildValue("(iN)", node, dict);
    if (!pair) return -1;
    int rc = vec_push(&w->totals, &pair);
    if (rc < 0) Py_DECREF(pair);
    return rc;
}

/* Follow the chosen edges of one expanded node (shared by the compiled and the callback selection). */
static int follow(Walk *w, const int32_t *chosen, Py_ssize_t n_chosen, int32_t hop, Vec *fresh) {
    for (Py_ssize_t k = 0; k < n_chosen; k++) {
        int32_t edge = chosen[k];
        int rc = map_put(&w->seen, edge, 1);
        if (rc < 0) return -1;
        if (rc == 0) continue;
        if (vec_push(&w->followed, &edge) < 0 || vec_push(&w->followed_hop, &hop) < 0) return -1;
        w->sources[w->srccol[edge]] = 1;
        int32_t far = w->far[edge];
        int64_t when = w->ts[edge];
        Reached *r = reached_of(w, far);
        if (!r) {
            Reached fresh_node = {far, hop, when, -1, ST_HOP_BUDGET, -1.0, -1, 0, 0};
            int32_t index = (int32_t)w->reached.len;
            if (vec_push(&w->reached, &fresh_node) < 0 || map_put(&w->index, far, index) < 0) return -1;
            if (vec_push(fresh, &far) < 0) return -1;
            r = &AT(w->reached, Reached, index);
        } else if (r->hop == hop) {
            if (w->outgoing ? when < r->arrived : when > r->arrived) r->arrived = when;
        }
        if (r->hop == hop) {
            uint64_t hi = w->vhi[edge];
            int32_t tid = w->token[edge];
            int dec = w->tokdec[tid + 1];
            if (hi == UINT64_MAX || dec < 0 || dec > 19) {
                w->unsupported = 1;
                return 0;
            }
            double size = div_round(((u128)hi << 64) | w->vlo[edge], POW10[dec]);
            if (size > r->weight || (size == r->weight && when < r->parent_ts)) {
                /* on equal weight the parent is the first in the result's edge order (time, then tx hash, kind,
                   position): decided here by time, left to Python when the times are equal too */
                r->weight = size;
                r->parent = edge;
                r->parent_ts = when;
                r->tie = 0;
            } else if (size == r->weight && when == r->parent_ts) {
                r->tie = 1;
            }
        }
    }
    return 0;
}

/* The selection of `TransferGraph.select` for one node, or -2 when the Python callback must decide. */
static int expand(Walk *w, int32_t node, int is_root, int32_t hop, Vec *fresh, Vec *chosen) {
    Reached *r = reached_of(w, node);
    int64_t since = w->since, until = w->until;
    if (w->follow_time && r->arrived != NO_TIME) {
        if (w->outgoing) since = (since == NO_TIME || r->arrived > since) ? r->arrived : since;
        else until = (until == NO_TIME || r->arrived < until) ? r->arrived : until;
    }
    int64_t lo = node + 1 < w->n_nodes + 1 ? w->off[node] : 0, hi = node + 1 < w->n_nodes + 1 ? w->off[node + 1] : 0;
    int64_t degree = hi - lo;
    r->degree = degree;
    if (degree > w->hub_degree && !is_root) {
        r->stop = ST_BUSY;
        return add_cut(w, node, hop - 1, CUT_BUSY, 0, degree);
    }
    if (!degree) {
        r->stop = ST_NO_DATA;
        return 0;
    }
    if (since != NO_TIME) lo = lower_bound(w->stamps, lo, hi, since);
    if (until != NO_TIME) hi = upper_bound(w->stamps, lo, hi, until);
    int64_t in_window = hi - lo, scanned = in_window;
    if (in_window > w->scan_limit) {
        scanned = w->scan_limit;
        if (w->outgoing) hi = lo + scanned;
        else lo = hi - scanned;
    }
    /* the edges' columns are read at random places of large arrays: ask for them all at once first, so that the
       cache misses overlap instead of coming one after another (the walk's time on a big graph is these misses) */
    for (int64_t i = lo, end = hi - lo > PREFETCH ? lo + PREFETCH : hi; i < end; i++) {
        int32_t edge = w->adj[i];
        __builtin_prefetch(&w->far[edge]);
        __builtin_prefetch(&w->vhi[edge]);
        __builtin_prefetch(&w->vlo[edge]);
        __builtin_prefetch(&w->token[edge]);
        __builtin_prefetch(&w->ts[edge]);
        __builtin_prefetch(&w->srccol[edge]);
    }
    int32_t tids[MAX_TOKENS_PER_NODE];
    u128 sums[MAX_TOKENS_PER_NODE];
    int n_tids = 0, passing_tid = 0, multi_asset = 0, any_passing = 0;
    map_clear(&w->parties);
    w->party_sums.len = 0;
    chosen->len = 0;
    for (int64_t i = lo; i < hi; i++) {
        int32_t edge = w->adj[i];
        int32_t party = w->far[edge];
        if (party == node) continue;
        uint64_t vh = w->vhi[edge];
        if (vh == UINT64_MAX) {
            w->unsupported = 1;
            return 0;
        }
        u128 value = ((u128)vh << 64) | w->vlo[edge];
        if (!value) continue;
        int32_t tid = w->token[edge];
        if (w->filter_mode && tid != w->wanted) continue;
        int t = 0;
        while (t < n_tids && tids[t] != tid) t++;
        if (t == n_tids) {
            if (n_tids == MAX_TOKENS_PER_NODE) return -2;
            tids[t] = tid;
            sums[t] = 0;
            n_tids++;
        }
        if (sums[t] + value < sums[t]) return -2; /* a total beyond 128 bits */
        sums[t] += value;
        if (w->use_thresh) {
            u128 threshold = ((u128)w->thr_hi[tid + 1] << 64) | w->thr_lo[tid + 1];
            if (value < threshold) continue;
        }
        if (!any_passing) passing_tid = tid;
        else if (tid != passing_tid) multi_asset = 1;
        any_passing = 1;
        int32_t slot = map_get(&w->parties, party, -1);
        if (slot < 0) {
            PartyRec rec = {party, 0, 0};
            slot = (int32_t)w->party_sums.len;
            if (vec_push(&w->party_sums, &rec) < 0 || map_put(&w->parties, party, slot) < 0) return -1;
        }
        PartyRec *rec = &AT(w->party_sums, PartyRec, slot);
        if (rec->sum + value < rec->sum) return -2;
        rec->sum += value;
        if (vec_push(chosen, &edge) < 0) return -1;
    }
    int64_t count = (int64_t)w->party_sums.len;
    if (count > w->fanout) {
        if (multi_asset) return -2; /* ranked per asset: `rank_counterparties` in Python */
        w->order.len = w->order_tmp.len = 0;
        for (int32_t i = 0; i < (int32_t)count; i++)
            if (vec_push(&w->order, &i) < 0 || vec_push(&w->order_tmp, &i) < 0) return -1;
        sort_ids(w, (int32_t *)w->order.data, (int32_t *)w->order_tmp.data, count, party_less);
        for (int64_t i = 0; i < w->fanout; i++) AT(w->party_sums, PartyRec, AT(w->order, int32_t, i)).keep = 1;
        Py_ssize_t kept = 0;
        for (Py_ssize_t i = 0; i < chosen->len; i++) {
            int32_t edge = AT(*chosen, int32_t, i);
            if (AT(w->party_sums, PartyRec, map_get(&w->parties, w->far[edge], 0)).keep)
                AT(*chosen, int32_t, kept++) = edge;
        }
        chosen->len = kept;
    }
    r->stop = ST_EXPANDED;
    PyObject *dict = PyDict_New();
    if (!dict) return -1;
    for (int t = 0; t < n_tids; t++) {
        PyObject *key = PyLong_FromLong(tids[t]), *val = u128_to_py(sums[t]);
        if (!key || !val || PyDict_SetItem(dict, key, val) < 0) {
            Py_XDECREF(key);
            Py_XDECREF(val);
            Py_DECREF(dict);
            return -1;
        }
        Py_DECREF(key);
        Py_DECREF(val);
    }
    if (store_totals(w, node, dict) < 0) return -1;
    if (count > w->fanout && add_cut(w, node, hop - 1, CUT_FANOUT, w->fanout, count - w->fanout) < 0) return -1;
    if (in_window > scanned && add_cut(w, node, hop - 1, CUT_SCAN, scanned, in_window - scanned) < 0) return -1;
    return follow(w, (int32_t *)chosen->data, chosen->len, hop, fresh);
}

static PyObject *opt_int(int64_t v) { return v == NO_TIME ? Py_NewRef(Py_None) : PyLong_FromLongLong(v); }

/* The node's selection through `select_cb(node, since, until, root)` (a `Selection`). */
static int expand_in_python(Walk *w, int32_t node, int is_root, int32_t hop, Vec *fresh, Vec *chosen) {
    Reached *r = reached_of(w, node);
    int64_t since = w->since, until = w->until;
    if (w->follow_time && r->arrived != NO_TIME) {
        if (w->outgoing) since = (since == NO_TIME || r->arrived > since) ? r->arrived : since;
        else until = (until == NO_TIME || r->arrived < until) ? r->arrived : until;
    }
    PyObject *result = PyObject_CallFunction(w->select_cb, "iNNO", node, opt_int(since), opt_int(until),
                                             is_root ? Py_True : Py_False);
    if (!result) return -1;
    int rc = -1;
    PyObject *picked = NULL;
    long long degree, hub, in_window, scanned, counterparties, kept, matched = 0;
    PyObject *chosen_list, *totals;
    if (!PyArg_ParseTuple(result, "LLLLOOLL|L", &degree, &hub, &in_window, &scanned, &chosen_list, &totals,
                          &counterparties, &kept, &matched))
        goto done;
    r = reached_of(w, node);
    r->degree = degree;
    if (hub) {
        r->stop = ST_BUSY;
        rc = add_cut(w, node, hop - 1, CUT_BUSY, 0, degree);
        goto done;
    }
    if (!degree) {
        r->stop = ST_NO_DATA;
        rc = 0;
        goto done;
    }
    r->stop = ST_EXPANDED;
    if (store_totals(w, node, Py_NewRef(totals)) < 0) goto done;
    if (counterparties > kept && add_cut(w, node, hop - 1, CUT_FANOUT, kept, counterparties - kept) < 0) goto done;
    if (in_window > scanned && add_cut(w, node, hop - 1, CUT_SCAN, scanned, in_window - scanned) < 0) goto done;
    picked = PySequence_Fast(chosen_list, "chosen must be a sequence");
    if (!picked) goto done;
    chosen->len = 0;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(picked);
    for (Py_ssize_t i = 0; i < n; i++) {
        long edge = PyLong_AsLong(PySequence_Fast_GET_ITEM(picked, i));
        if (edge == -1 && PyErr_Occurred()) goto done;
        int32_t e = (int32_t)edge;
        if (vec_push(chosen, &e) < 0) goto done;
    }
    rc = follow(w, (int32_t *)chosen->data, chosen->len, hop, fresh);
done:
    Py_XDECREF(picked);
    Py_DECREF(result);
    return rc;
}

/* Ask for what expanding `nodes` will read, in stages (offsets, then the adjacency, then the edges' columns), so
   that the cache misses of the whole batch overlap: on a big graph the walk's time is these misses. Hints only. */
static void prefetch_batch(Walk *w, const int32_t *nodes, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) {
        if (nodes[i] >= w->n_nodes) continue;
        __builtin_prefetch(&w->off[nodes[i]]);
        __builtin_prefetch(&w->off[nodes[i] + 1]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (nodes[i] >= w->n_nodes) continue;
        int64_t lo = w->off[nodes[i]], hi = w->off[nodes[i] + 1];
        if (hi - lo > w->hub_degree) continue; /* busy: not expanded (unless the root, read anyway) */
        for (int64_t k = lo; k < hi && k < lo + PREFETCH; k += 16) __builtin_prefetch(&w->adj[k]);
        for (int64_t k = lo; k < hi && k < lo + PREFETCH; k += 8) __builtin_prefetch(&w->stamps[k]);
    }
    for (Py_ssize_t i = 0; i < n; i++) {
        if (nodes[i] >= w->n_nodes) continue;
        int64_t lo = w->off[nodes[i]], hi = w->off[nodes[i] + 1];
        if (hi - lo > w->hub_degree) continue;
        for (int64_t k = lo; k < hi && k < lo + PREFETCH; k++) {
            int32_t edge = w->adj[k];
            __builtin_prefetch(&w->far[edge]);
            __builtin_prefetch(&w->vhi[edge]);
            __builtin_prefetch(&w->vlo[edge]);
            __builtin_prefetch(&w->token[edge]);
            __builtin_prefetch(&w->ts[edge]);
        }
    }
}

static int run_walk(Walk *w) {
    Reached root = {w->root, 0, NO_TIME, -1, ST_HOP_BUDGET, 0.0, -1, 0, 0};
    if (vec_push(&w->reached, &root) < 0 || map_put(&w->index, w->root, 0) < 0) return -1;
    Vec frontier = VEC(int32_t), fresh = VEC(int32_t), chosen = VEC(int32_t), tmp = VEC(int32_t);
    int rc = -1;
    if (vec_push(&frontier, &w->root) < 0) goto done;
    for (int32_t hop = 1; hop <= w->hops; hop++) {
        int32_t *items = (int32_t *)frontier.data;
        Py_ssize_t n = frontier.len;
        while (tmp.cap < n) {
            int32_t zero = 0;
            if (vec_push(&tmp, &zero) < 0) goto done;
        }
        tmp.len = 0;
        sort_ids(w, items, (int32_t *)tmp.data, n, frontier_less);
        fresh.len = 0;
        Py_ssize_t start = 0;
        while (start < n) {
            Py_ssize_t reached = w->reached.len;
            if (reached >= w->max_nodes) {
                for (Py_ssize_t i = start; i < n; i++) {
                    reached_of(w, items[i])->stop = ST_NODE_BUDGET;
                    if (add_cut(w, items[i], hop - 1, CUT_BUDGET, 0, 0) < 0) goto done;
                }
                break;
            }
            int64_t size = (w->max_nodes - reached) / w->fanout + 1;
            if (size > BATCH) size = BATCH;
            if (size < 1) size = 1;
            Py_ssize_t stop = start + size < n ? start + size : n;
            prefetch_batch(w, items + start, stop - start);
            for (Py_ssize_t i = start; i < stop; i++) {
                int32_t node = items[i];
                int got = expand(w, node, node == w->root, hop, &fresh, &chosen);
                if (got == -2) got = expand_in_python(w, node, node == w->root, hop, &fresh, &chosen);
                if (got < 0) goto done;
                if (w->unsupported) {
                    rc = 0;
                    goto done;
                }
            }
            start = stop;
        }
        frontier.len = 0;
        if (fresh.len && w->marks) {
            for (Py_ssize_t i = 0; i < fresh.len; i++) {
                int32_t node = AT(fresh, int32_t, i);
                uint8_t mark = node < w->n_marks ? w->marks[node] : 0;
                if (mark && vec_push(&w->labelled, &node) < 0) goto done;
                if (mark == 2) {
                    reached_of(w, node)->stop = ST_SERVICE;
                    continue;
                }
                if (vec_push(&frontier, &node) < 0) goto done;
            }
        } else if (fresh.len) {
            PyObject *ids = PyList_New(fresh.len);
            if (!ids) goto done;
            for (Py_ssize_t i = 0; i < fresh.len; i++) {
                PyObject *id = PyLong_FromLong(AT(fresh, int32_t, i));
                if (!id) {
                    Py_DECREF(ids);
                    goto done;
                }
                PyList_SET_ITEM(ids, i, id);
            }
            PyObject *terminal = PyObject_CallOneArg(w->label_cb, ids);
            Py_DECREF(ids);
            if (!terminal) goto done;
            PyObject *seq = PySequence_Fast(terminal, "label callback must return a sequence");
            Py_DECREF(terminal);
            if (!seq) goto done;
            map_clear(&w->parties); /* reused as the terminal set */
            for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
                long node = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
                Reached *r = (node == -1 && PyErr_Occurred()) ? NULL : reached_of(w, (int32_t)node);
                if (!r) {
                    Py_DECREF(seq);
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "terminal node was not reached");
                    goto done;
                }
                r->stop = ST_SERVICE;
                if (map_put(&w->parties, (int32_t)node, 1) < 0) {
                    Py_DECREF(seq);
                    goto done;
                }
            }
            Py_DECREF(seq);
            for (Py_ssize_t i = 0; i < fresh.len; i++) {
                int32_t node = AT(fresh, int32_t, i);
                if (map_get(&w->parties, node, 0)) continue;
                if (vec_push(&frontier, &node) < 0) goto done;
            }
        }
        if (!frontier.len) break;
    }
    rc = 0;
done:
    free(frontier.data);
    free(fresh.data);
    free(chosen.data);
    free(tmp.data);
    if (rc < 0 && !PyErr_Occurred()) PyErr_NoMemory();
    return rc;
}

static int get_buffer(PyObject *obj, Py_buffer *view, Py_ssize_t itemsize, const char *what) {
    if (PyObject_GetBuffer(obj, view, PyBUF_SIMPLE) < 0) return -1;
    if (view->len % itemsize) {
        PyBuffer_Release(view);
        PyErr_Format(PyExc_ValueError, "%s: not an array of %zd-byte items", what, itemsize);
        return -1;
    }
    return 0;
}

static PyObject *bytes_of(const Vec *v) { return PyBytes_FromStringAndSize(v->data ? v->data : "", v->len * v->item); }

static int64_t opt_time(PyObject *obj) {
    if (obj == Py_None) return NO_TIME;
    return PyLong_AsLongLong(obj);
}

PyDoc_STRVAR(walk_doc,
             "walk(columns, names, root, params, label_cb, select_cb, marks=None) -> tuple | None\n\n"
             "The bounded trace walk over the graph's arrays; None when the graph or parameters need the Python "
             "walk. See tracing.trace.compiled for the columns and the result. `marks`: a byte per node (0: no label, "
             "1: labelled, 2: a labelled service, where the trace stops), read instead of calling label_cb; the "
             "result then ends with the reached labelled nodes (int32 bytes), else with None.");

static PyObject *walk(PyObject *self, PyObject *args) {
    PyObject *columns, *names, *label_cb, *select_cb, *since_obj, *until_obj, *marks_obj = Py_None;
    int root, outgoing, hops, follow_time, filter_mode, wanted, use_thresh;
    long long fanout, max_nodes, scan_limit, hub_degree;
    if (!PyArg_ParseTuple(args, "OO!i(iiiOOLLLLiii)OO|O", &columns, &PyList_Type, &names, &root, &outgoing, &hops,
                          &follow_time, &since_obj, &until_obj, &fanout, &max_nodes, &scan_limit, &hub_degree,
                          &filter_mode, &wanted, &use_thresh, &label_cb, &select_cb, &marks_obj))
        return NULL;
    static const char *col_names[] = {"off", "adj", "stamps", "far", "ts", "value_lo", "value_hi",
                                      "token", "source", "decimals", "threshold_lo", "threshold_hi"};
    static const Py_ssize_t sizes[] = {8, 4, 8, 4, 8, 8, 8, 4, 1, 4, 8, 8};
    enum { N_COLS = 12 };
    if (!PyTuple_Check(columns) || PyTuple_GET_SIZE(columns) != N_COLS) {
        PyErr_SetString(PyExc_TypeError, "columns: a tuple of 12 arrays");
        return NULL;
    }
    Py_buffer views[N_COLS], marks_view;
    int got = 0, have_marks = 0;
    PyObject *out = NULL;
    Walk w;
    memset(&w, 0, sizeof w);
    for (; got < N_COLS; got++)
        if (get_buffer(PyTuple_GET_ITEM(columns, got), &views[got], sizes[got], col_names[got]) < 0) goto fail;
    if (marks_obj != Py_None) {
        if (get_buffer(marks_obj, &marks_view, 1, "marks") < 0) goto fail;
        have_marks = 1;
        w.marks = marks_view.buf;
        w.n_marks = marks_view.len;
    }
    w.off = views[0].buf;
    w.adj = views[1].buf;
    w.stamps = views[2].buf;
    w.far = views[3].buf;
    w.ts = views[4].buf;
    w.vlo = views[5].buf;
    w.vhi = views[6].buf;
    w.token = views[7].buf;
    w.srccol = views[8].buf;
    w.tokdec = views[9].buf;
    w.thr_lo = views[10].buf;
    w.thr_hi = views[11].buf;
    w.n_nodes = views[0].len / 8 - 1;
    w.n_edges = views[4].len / 8;
    w.n_tokens = views[9].len / 4 - 1;
    if (w.n_nodes < 0 || views[3].len / 4 != w.n_edges || views[5].len / 8 != w.n_edges ||
        views[6].len / 8 != w.n_edges || views[7].len / 4 != w.n_edges || views[8].len != w.n_edges ||
        views[10].len / 8 != w.n_tokens + 1 || views[11].len / 8 != w.n_tokens + 1 || w.n_tokens < 0 ||
        PyList_GET_SIZE(names) < w.n_nodes || root < 0 || root >= w.n_nodes || fanout < 1 || max_nodes < 1 ||
        scan_limit < 1) {
        PyErr_SetString(PyExc_ValueError, "walk: inconsistent columns or parameters");
        goto fail;
    }
    w.names = names;
    w.root = root;
    w.outgoing = outgoing;
    w.hops = hops;
    w.follow_time = follow_time;
    w.since = opt_time(since_obj);
    w.until = opt_time(until_obj);
    if (PyErr_Occurred()) goto fail;
    w.fanout = fanout;
    w.max_nodes = max_nodes;
    w.scan_limit = scan_limit;
    w.hub_degree = hub_degree;
    w.filter_mode = filter_mode;
    w.wanted = wanted;
    w.use_thresh = use_thresh;
    w.label_cb = label_cb;
    w.select_cb = select_cb;
    w.labelled = (Vec)VEC(int32_t);
    w.reached = (Vec)VEC(Reached);
    w.followed = (Vec)VEC(int32_t);
    w.followed_hop = (Vec)VEC(int32_t);
    w.cuts = (Vec)VEC(CutRec);
    w.totals = (Vec)VEC(PyObject *);
    w.party_sums = (Vec)VEC(PartyRec);
    w.order = (Vec)VEC(int32_t);
    w.order_tmp = (Vec)VEC(int32_t);
    if (map_init(&w.index, 1024) < 0 || map_init(&w.seen, 1024) < 0 || map_init(&w.parties, 1024) < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    if (run_walk(&w) < 0) goto fail;
    if (w.unsupported) {
        out = Py_NewRef(Py_None);
        goto fail;
    }
    {
        Py_ssize_t n = w.reached.len;
        Vec node = VEC(int32_t), hop = VEC(int32_t), arrived = VEC(int64_t), degree = VEC(int64_t),
            stop = VEC(int8_t), parent = VEC(int32_t);
        int ok = 1;
        for (Py_ssize_t i = 0; i < n && ok; i++) {
            Reached *r = &AT(w.reached, Reached, i);
            int32_t p = r->tie ? -2 : r->parent;
            ok = vec_push(&node, &r->node) == 0 && vec_push(&hop, &r->hop) == 0 && vec_push(&arrived, &r->arrived) == 0 &&
                 vec_push(&degree, &r->degree) == 0 && vec_push(&stop, &r->stop) == 0 && vec_push(&parent, &p) == 0;
        }
        PyObject *cuts = ok ? PyList_New(w.cuts.len) : NULL;
        for (Py_ssize_t i = 0; cuts && i < w.cuts.len; i++) {
            CutRec *c = &AT(w.cuts, CutRec, i);
            PyObject *item = Py_BuildValue("(iiiLL)", c->node, c->hop, c->reason, (long long)c->kept,
                                           (long long)c->dropped);
            if (!item) {
                Py_CLEAR(cuts);
                break;
            }
            PyList_SET_ITEM(cuts, i, item);
        }
        PyObject *totals = cuts ? PyList_New(w.totals.len) : NULL;
        for (Py_ssize_t i = 0; totals && i < w.totals.len; i++) {
            PyList_SET_ITEM(totals, i, AT(w.totals, PyObject *, i));
            AT(w.totals, PyObject *, i) = NULL;
        }
        PyObject *sources = totals ? PyList_New(0) : NULL;
        for (int s = 0; sources && s < 256; s++) {
            if (!w.sources[s]) continue;
            PyObject *id = PyLong_FromLong(s);
            if (!id || PyList_Append(sources, id) < 0) Py_CLEAR(sources);
            Py_XDECREF(id);
        }
        if (sources)
            out = Py_BuildValue("(NNNNNNNNNNNN)", bytes_of(&node), bytes_of(&hop), bytes_of(&arrived),
                                bytes_of(&degree), bytes_of(&stop), bytes_of(&parent), bytes_of(&w.followed),
                                bytes_of(&w.followed_hop), cuts, totals, sources,
                                w.marks ? bytes_of(&w.labelled) : Py_NewRef(Py_None));
        else {
            Py_XDECREF(cuts);
            Py_XDECREF(totals);
            if (!PyErr_Occurred()) PyErr_NoMemory();
        }
        free(node.data);
        free(hop.data);
        free(arrived.data);
        free(degree.data);
        free(stop.data);
        free(parent.data);
    }
fail:
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    if (have_marks) PyBuffer_Release(&marks_view);
    free(w.labelled.data);
    for (Py_ssize_t i = 0; i < w.totals.len; i++) Py_XDECREF(AT(w.totals, PyObject *, i));
    free(w.reached.data);
    free(w.followed.data);
    free(w.followed_hop.data);
    free(w.cuts.data);
    free(w.totals.data);
    free(w.party_sums.data);
    free(w.order.data);
    free(w.order_tmp.data);
    map_free(&w.index);
    map_free(&w.seen);
    map_free(&w.parties);
    return out;
}

PyDoc_STRVAR(ancestors_doc,
             "ancestors(followed, followed_hop, near, far, nodes, hops, targets) -> bytes\n\n"
             "The positions (int32, ascending) in `followed` of the steps that carry taint towards `targets`: the "
             "edges one hop further from the root (near at hop h-1, far at hop h) whose far end is a target or the "
             "near end of another such edge. `followed`/`followed_hop`: a walk's followed edges in walk order (hops "
             "ascending); `near`/`far`: the graph's edge ends seen from the root; `nodes`/`hops`: the reached nodes "
             "and their hops; `targets`: node ids.");

static PyObject *ancestors(PyObject *self, PyObject *args) {
    PyObject *objs[6], *targets;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &objs[0], &objs[1], &objs[2], &objs[3], &objs[4], &objs[5], &targets))
        return NULL;
    static const char *what[] = {"followed", "followed_hop", "near", "far", "nodes", "hops"};
    Py_buffer views[6];
    int got = 0;
    PyObject *out = NULL;
    Map hop_of = {0}, needed = {0};
    Vec kept = VEC(int32_t);
    for (; got < 6; got++)
        if (get_buffer(objs[got], &views[got], 4, what[got]) < 0) goto done;
    const int32_t *followed = views[0].buf, *fhop = views[1].buf, *near = views[2].buf, *far = views[3].buf,
                  *nodes = views[4].buf, *hops = views[5].buf;
    Py_ssize_t n_steps = views[0].len / 4, n_edges = views[2].len / 4, n_nodes = views[4].len / 4;
    if (views[1].len / 4 != n_steps || views[3].len / 4 != n_edges || views[5].len / 4 != n_nodes) {
        PyErr_SetString(PyExc_ValueError, "ancestors: inconsistent arrays");
        goto done;
    }
    if (map_init(&hop_of, (size_t)n_nodes) < 0 || map_init(&needed, 64) < 0) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t i = 0; i < n_nodes; i++)
        if (map_put(&hop_of, nodes[i], hops[i]) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    PyObject *seq = PySequence_Fast(targets, "targets: a sequence of node ids");
    if (!seq) goto done;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        long node = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if ((node == -1 && PyErr_Occurred()) || map_put(&needed, (int32_t)node, 1) < 0) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_NoMemory();
            goto done;
        }
    }
    Py_DECREF(seq);
    /* hops descending: a node's mark is final before the edges into it (one hop nearer) are looked at */
    for (Py_ssize_t k = n_steps - 1; k >= 0; k--) {
        int32_t edge = followed[k], hop = fhop[k];
        if (edge < 0 || edge >= n_edges || (k && fhop[k - 1] > hop)) {
            PyErr_SetString(PyExc_ValueError, "ancestors: edge out of range or steps not in hop order");
            goto done;
        }
        int32_t a = near[edge], b = far[edge];
        if (!map_get(&needed, b, 0) || map_get(&hop_of, b, -1) != hop || map_get(&hop_of, a, -1) != hop - 1) continue;
        int32_t at = (int32_t)k;
        if (map_put(&needed, a, 1) < 0 || vec_push(&kept, &at) < 0) {
            PyErr_NoMemory();
            goto done;
        }
    }
    {
        int32_t *items = (int32_t *)kept.data;
        for (Py_ssize_t i = 0, j = kept.len - 1; i < j; i++, j--) {
            int32_t t = items[i];
            items[i] = items[j];
            items[j] = t;
        }
        out = bytes_of(&kept);
    }
done:
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    if (hop_of.keys || hop_of.vals || hop_of.gens) map_free(&hop_of);
    if (needed.keys || needed.vals || needed.gens) map_free(&needed);
    free(kept.data);
    return out;
}

static PyObject *weight(PyObject *self, PyObject *args) {
    unsigned long long hi, lo;
    int decimals;
    if (!PyArg_ParseTuple(args, "KKi", &hi, &lo, &decimals)) return NULL;
    if (decimals < 0 || decimals > 19 || hi >> 63) {
        PyErr_SetString(PyExc_ValueError, "weight: decimals 0..19 and values below 2**127");
        return NULL;
    }
    return PyFloat_FromDouble(div_round(((u128)hi << 64) | lo, POW10[decimals]));
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, walk_doc},
    {"ancestors", ancestors, METH_VARARGS, ancestors_doc},
    {"weight", weight, METH_VARARGS, "weight(hi, lo, decimals): (hi << 64 | lo) / 10**decimals, correctly rounded"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "Compiled bounded trace walk.", -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
