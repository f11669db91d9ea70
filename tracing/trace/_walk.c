/* The bounded trace walks, compiled: `walk`, the walk of `tracing.trace.walk.trace_graph_python` (following the graph)
 * over the transfer graph's adjacency arrays, by node and edge ids, with the same selection per address as
 * `TransferGraph.select`; and `value_walk` (further down), the value-aware walk of `tracing.trace.walk._trace_value`.
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

/* === the value-aware walk ===================================================================================
 *
 * `tracing.trace.walk._trace_value` over the in-memory graph, compiled: each expanded address's ledger (haircut,
 * poison or FIFO) runs over its transfers in time order (`tracing.trace.value_graph.select_value_graph`, the
 * reference being `tracing.trace.value.select_value`; under haircut opened with what its transfers lack,
 * `tracing.trace.value.shortfall`), the follow rule (`tracing.trace.value.judge`) picks the transfers that carry
 * enough of the traced funds (`follow_rule`: the one place it is stated here), and the walk goes on from the
 * addresses they reach, expanding an address again when more traced funds reach it later (up to `revisits` times).
 *
 * Exact integer arithmetic as in Python: raw amounts are 128-bit integers, products that may pass 128 bits are
 * computed on 256 bits. USD comes in as raw thresholds per (token, day) from a Python callback (the smallest raw
 * amount worth the dust floor, three times it, the USD minimum), so no USD value is computed here.
 */

#define MAX_SLOTS 32
#define MAX_HOPS_V 10
enum { MODEL_HAIRCUT = 0, MODEL_POISON = 1, MODEL_FIFO = 2 };
enum { VCUT_FANOUT = 0, VCUT_SCAN = 1, VCUT_BUSY = 2, VCUT_BUDGET = 3, VCUT_DUST = 4, N_VCUT = 5 };
enum { F_PASS = 0, F_SMALL = 1, F_DUST = 2, F_SHARE = 3 };
/* why a followed transfer was followed (`tracing.trace.value.FollowedBy`): the floor, its share alone, with its
   address's other small transfers, or no floor for its asset (no price that day, no floor in units) */
enum { WHY_FLOOR = 0, WHY_SHARE = 1, WHY_TOGETHER = 2, WHY_NO_FLOOR = 3 };
static const u128 U128_MAX = ~(u128)0;

/* --- 256-bit products ---------------------------------------------------------------------------------------- */

typedef struct {
    uint64_t w[4]; /* little-endian limbs */
} U256;

static U256 mul256(u128 a, u128 b) {
    uint64_t x[2] = {(uint64_t)a, (uint64_t)(a >> 64)}, y[2] = {(uint64_t)b, (uint64_t)(b >> 64)};
    U256 r = {{0, 0, 0, 0}};
    for (int i = 0; i < 2; i++) {
        u128 carry = 0;
        for (int j = 0; j < 2; j++) {
            u128 t = (u128)x[i] * y[j] + r.w[i + j] + carry;
            r.w[i + j] = (uint64_t)t;
            carry = t >> 64;
        }
        r.w[i + 2] = (uint64_t)carry;
    }
    return r;
}

static int cmp256(U256 a, U256 b) {
    for (int i = 3; i >= 0; i--)
        if (a.w[i] != b.w[i]) return a.w[i] < b.w[i] ? -1 : 1;
    return 0;
}

/* a*b compared with c*d: -1, 0, 1 */
static int cmp_mul(u128 a, u128 b, u128 c, u128 d) {
    u128 p, q;
    if (!__builtin_mul_overflow(a, b, &p) && !__builtin_mul_overflow(c, d, &q)) return p < q ? -1 : p > q;
    return cmp256(mul256(a, b), mul256(c, d));
}

/* floor(a*b/c), c > 0, for results that fit 128 bits (b <= c in every use) */
static u128 mul_div(u128 a, u128 b, u128 c) {
    u128 p;
    if (!__builtin_mul_overflow(a, b, &p)) return p / c;
    U256 n = mul256(a, b);
    u128 rem = 0, q = 0;
    for (int bit = 255; bit >= 0; bit--) {
        int top = (int)(rem >> 127);
        rem = (rem << 1) | ((n.w[bit / 64] >> (bit % 64)) & 1);
        q <<= 1;
        if (top || rem >= c) {
            rem -= c;
            q |= 1;
        }
    }
    return q;
}

static u128 sat_add(u128 a, u128 b, int *overflow) {
    u128 r;
    if (__builtin_add_overflow(a, b, &r)) {
        *overflow = 1;
        return U128_MAX;
    }
    return r;
}

/* --- the follow rule (`tracing.trace.value._follow`) ----------------------------------------------------------- */

typedef struct {
    u128 share_num, share_den;   /* TraceParams.follow_share */
    u128 crumb_num, crumb_den;   /* TraceParams.crumb_share */
    u128 pure_num, pure_den;     /* value.PURITY */
    u128 dilute_num, dilute_den; /* value.DILUTED */
    u128 crumb_cap;              /* value.CRUMB_CAP */
    u128 pass_window;            /* value.PASS_WINDOW (seconds) */
    u128 fee_num, fee_den;       /* value.PASS_FEE */
    u128 pass_on;                /* TraceParams.pass_through: 0 turns the pass-through off */
} Rule;

typedef struct {
    u128 carried, value, total; /* traced value it carries, its value, traced funds its address received (asset) */
    int root;
    int floor_kind;             /* 0: no floor (no price and no floor in units); 1: a floor in raw units */
    u128 floor, cap;            /* the dust floor in raw units, and CRUMB_CAP times it (priced: from the price) */
} FollowIn;

/* Whether one transfer is followed on its own (F_PASS: the floor; F_SHARE: its share alone), only if its address's
   small transfers together carry the share (F_SMALL), or is dust. The one statement of the rule in C: keep it as
   `tracing.trace.value.judge` (`over_floor`, `over_cap`: carried >= floor, >= cap; both where there is no floor). */
static int follow_rule(const Rule *rule, const FollowIn *in) {
    u128 carried = in->carried, value = in->value, total = in->total;
    /* less than DILUTED traced funds: not followed at any amount (the roots hold nothing but traced funds) */
    if (!in->root && cmp_mul(carried, rule->dilute_den, rule->dilute_num, value) < 0) return F_DUST;
    int crumb_of = !in->root && total > 0 && cmp_mul(carried, rule->crumb_den, rule->crumb_num, total) < 0;
    int over_floor = in->floor_kind == 0 || carried >= in->floor;
    int over_cap = in->floor_kind == 0 || carried >= in->cap;
    if (over_floor && (over_cap || !crumb_of)) return F_PASS;
    if (cmp_mul(carried, rule->pure_den, rule->pure_num, value) < 0) return F_DUST;
    if (total && cmp_mul(carried, rule->share_den, rule->share_num, total) >= 0) return F_SHARE;
    return F_SMALL;
}

/* the small transfers of one asset together: followed when they carry the share of what the address received
   (`tracing.trace.value.spread_followed`) */
static int spread_passes(const Rule *rule, u128 spread, u128 total) {
    return total && cmp_mul(spread, rule->share_den, rule->share_num, total) >= 0;
}

/* --- state ------------------------------------------------------------------------------------------------------ */

typedef struct {
    int32_t node, hop;
    int64_t arrived; /* NO_TIME: a root */
    int64_t degree;  /* -1: never read */
    int8_t stop, terminal;
    int32_t expanded;
    double weight;
    int32_t dust_gen;
    int64_t dust_count, dust_priced;
    int32_t totals_at; /* index in `totals`, -1: none */
} VNode;

typedef struct {
    int32_t node, gen, tid;
    int64_t day; /* -1: no price (summed in units) */
    u128 sum;
} DustRec;

typedef struct {
    int32_t node, hop, reason, live;
    int64_t kept, dropped;
} VCut;

typedef struct {
    int32_t node;
    PyObject *dict;
} TotRec;

typedef struct {
    int32_t tid;
    int64_t day;
    int has;
    u128 floor, cap, min;
} PriceRec;

typedef struct {
    u128 value, traced;
} Lot;

typedef struct {
    u128 value, traced;
    int64_t ts;
    int32_t e;
} Receipt; /* a receipt of mostly traced funds, open to be passed on (`tracing.trace.value.PassThrough`) */

typedef struct {
    int32_t tid;
    u128 traced, clean, received, last_num, last_den, spread, sent_total;
    int has_last, in_sends, traced_asset;
    Vec lots;
    Py_ssize_t head;
    Vec receipts; /* haircut: receipts open to be passed on, in time order */
} Slot;

typedef struct {
    int64_t t;
    int32_t phase, e;
} Ev;

typedef struct {
    int32_t e, slot, swap, receipt; /* receipt: the edge of the receipt it passes on (`PassThrough`), or -1 */
    int32_t why;                    /* WHY_* once chosen */
    u128 carried;
} VStep;

typedef struct {
    /* graph */
    const int64_t *off[2], *stamps[2]; /* [0]: the trace direction, [1]: the other way */
    const int32_t *adj[2];
    const int32_t *far, *near;
    const int64_t *ts;
    const uint64_t *vlo, *vhi;
    const int32_t *token, *kind, *kind_rank, *tokdec;
    const uint8_t *srccol, *tx;
    const uint64_t *min_lo, *min_hi, *unit_lo, *unit_hi;
    const uint8_t *unit_has;
    Py_ssize_t n_nodes, n_edges, n_tokens, n_kinds;
    PyObject *names;
    /* parameters */
    int outgoing, hops, model, use_min_value, use_dust_usd, use_min_usd, filter_mode;
    int32_t wanted, revisits;
    int64_t since, until, fanout, max_nodes, scan_limit, hub_degree;
    Rule rule;
    PyObject *label_cb, *price_cb, *rank_cb;
    const uint8_t *marks;
    Py_ssize_t n_marks;
    /* walk state */
    Vec nodes, labelled, followed, followed_hop, carried, why, passes, cuts, totals, dust, prices,
        pending[MAX_HOPS_V + 1]; /* why, passes: per followed edge, as its carried value was set */
    Map index, seen, cut_at, price_at, mark;
    uint8_t *unfloored, *no_price; /* per token + 1 */
    uint8_t *never;                /* per token + 1: no price on any day (the price callback said so) */
    PriceRec unpriced;             /* what `price_of` answers for those */
    uint8_t sources[256];
    int unsupported;
    /* per selection (reused) */
    Slot slots[MAX_SLOTS];
    int n_slots;
    Vec sends, receives, events, steps, swap_tx, swap_share, order, order_tmp, party_sums, chosen, small;
    Map parties;
} VW;

static int vw_name_less(VW *w, int32_t a, int32_t b) {
    return PyUnicode_Compare(PyList_GET_ITEM(w->names, a), PyList_GET_ITEM(w->names, b)) < 0;
}

static VNode *vnode(VW *w, int32_t node) {
    int32_t i = map_get(&w->index, node, -1);
    return i < 0 ? NULL : &AT(w->nodes, VNode, i);
}

static int vw_frontier_less(VW *w, int32_t a, int32_t b) {
    VNode *x = vnode(w, a), *y = vnode(w, b);
    if (x->weight != y->weight) return x->weight > y->weight;
    return vw_name_less(w, a, b);
}

typedef struct {
    int32_t party, keep;
    u128 sum;
    int32_t tid, multi;
} VParty;

static int vw_party_less(VW *w, int32_t a, int32_t b) {
    VParty *x = &AT(w->party_sums, VParty, a), *y = &AT(w->party_sums, VParty, b);
    if (x->sum != y->sum) return x->sum > y->sum;
    return vw_name_less(w, x->party, y->party);
}

typedef int (*VLess)(VW *, int32_t, int32_t);

static void vsort(VW *w, int32_t *items, int32_t *tmp, Py_ssize_t n, VLess less) {
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
    vsort(w, items, tmp, mid, less);
    vsort(w, items + mid, tmp, n - mid, less);
    Py_ssize_t i = 0, j = mid, k = 0;
    while (i < mid && j < n) tmp[k++] = less(w, items[j], items[i]) ? items[j++] : items[i++];
    while (i < mid) tmp[k++] = items[i++];
    while (j < n) tmp[k++] = items[j++];
    memcpy(items, tmp, (size_t)n * sizeof(int32_t));
}

/* sorts `order` (ids 0..n-1 or node ids) with scratch space */
static int vsort_vec(VW *w, Vec *items, VLess less) {
    w->order_tmp.len = 0;
    int32_t zero = 0;
    while (w->order_tmp.len < items->len)
        if (vec_push(&w->order_tmp, &zero) < 0) return -1;
    vsort(w, (int32_t *)items->data, (int32_t *)w->order_tmp.data, items->len, less);
    return 0;
}

static inline int edge_value(VW *w, int32_t e, u128 *v) {
    uint64_t hi = w->vhi[e];
    if (hi == UINT64_MAX) {
        w->unsupported = 1;
        return -1;
    }
    *v = ((u128)hi << 64) | w->vlo[e];
    return 0;
}

static Slot *slot_of(VW *w, int32_t tid) {
    for (int i = 0; i < w->n_slots; i++)
        if (w->slots[i].tid == tid) return &w->slots[i];
    if (w->n_slots == MAX_SLOTS) {
        w->unsupported = 1;
        return NULL;
    }
    Slot *s = &w->slots[w->n_slots++];
    Vec lots = s->lots, receipts = s->receipts;
    memset(s, 0, sizeof *s);
    s->lots = lots;
    s->lots.len = 0;
    s->receipts = receipts;
    s->receipts.len = 0;
    s->tid = tid;
    return s;
}

/* Haircut's pass-through rule (`tracing.trace.value.PassThrough`): the latest receipt of `s` within the window of
   `ts` that a transfer of `value` passes on (its amount, or up to the fee less); taken off the open receipts, its
   traced value in `*traced`. Returns whether one was found. */
static int pass_match(const Rule *rule, Slot *s, int outgoing, u128 value, int64_t ts, u128 *traced, int32_t *edge) {
    Receipt *rc = (Receipt *)s->receipts.data;
    for (Py_ssize_t i = s->receipts.len - 1; i >= 0; i--) {
        int64_t gap = ts > rc[i].ts ? ts - rc[i].ts : rc[i].ts - ts;
        if ((u128)gap > rule->pass_window) break;
        /* forward: the transfer is the receipt or up to the fee less; backward: the receipt (a transfer out) is the
           transfer in or up to the fee less */
        u128 less = outgoing ? value : rc[i].value, more = outgoing ? rc[i].value : value;
        if (less <= more && cmp_mul(less, rule->fee_den, more, rule->fee_den - rule->fee_num) >= 0) {
            *traced = rc[i].traced;
            *edge = rc[i].e;
            memmove(&rc[i], &rc[i + 1], (size_t)(s->receipts.len - i - 1) * sizeof(Receipt));
            s->receipts.len--;
            return 1;
        }
    }
    return 0;
}

static int64_t day_of_ts(int64_t ts) { return ts >= 0 ? ts / 86400 : -((-ts + 86399) / 86400); }

static PriceRec *price_of(VW *w, int32_t tid, int64_t ts) {
    if (w->never[tid + 1]) return &w->unpriced;
    int64_t day = day_of_ts(ts);
    int32_t key = (int32_t)(((uint32_t)(tid + 1) << 16) ^ (uint32_t)(day & 0xFFFF));
    int32_t at = map_get(&w->price_at, key, -1);
    if (at >= 0) {
        PriceRec *p = &AT(w->prices, PriceRec, at);
        if (p->tid == tid && p->day == day) return p;
    }
    PyObject *res = PyObject_CallFunction(w->price_cb, "iL", (int)tid, (long long)day);
    if (!res) return NULL;
    PriceRec rec;
    memset(&rec, 0, sizeof rec);
    rec.tid = tid;
    rec.day = day;
    if (res == Py_False) { /* never priced: no more calls for this token */
        Py_DECREF(res);
        w->never[tid + 1] = 1;
        return &w->unpriced;
    }
    if (res != Py_None) {
        unsigned long long f_lo, f_hi, c_lo, c_hi, m_lo, m_hi;
        if (!PyArg_ParseTuple(res, "KKKKKK", &f_lo, &f_hi, &c_lo, &c_hi, &m_lo, &m_hi)) {
            Py_DECREF(res);
            return NULL;
        }
        rec.has = 1;
        rec.floor = ((u128)f_hi << 64) | f_lo;
        rec.cap = ((u128)c_hi << 64) | c_lo;
        rec.min = ((u128)m_hi << 64) | m_lo;
    }
    Py_DECREF(res);
    int32_t index = (int32_t)w->prices.len;
    if (vec_push(&w->prices, &rec) < 0 || map_put(&w->price_at, key, index) < 0) {
        PyErr_NoMemory();
        return NULL;
    }
    return &AT(w->prices, PriceRec, index);
}

/* a cut keyed by (node, reason): set (in place, or appended), or dropped when nothing was cut, as the Python walk's
   dict of cuts does */
static int set_cut(VW *w, int32_t node, int32_t hop, int32_t reason, int64_t kept, int64_t dropped) {
    int32_t key = node * N_VCUT + reason;
    int32_t at = map_get(&w->cut_at, key, -1);
    if (!dropped) {
        if (at >= 0) {
            AT(w->cuts, VCut, at).live = 0;
            if (map_put(&w->cut_at, key, -1) < 0) return -1;
        }
        return 0;
    }
    VCut c = {node, hop, reason, 1, kept, dropped};
    if (at >= 0) {
        AT(w->cuts, VCut, at) = c;
        return 0;
    }
    at = (int32_t)w->cuts.len;
    return (vec_push(&w->cuts, &c) < 0 || map_put(&w->cut_at, key, at) < 0) ? -1 : 0;
}

static int add_dust(VW *w, int32_t node, int32_t gen, int32_t tid, int64_t day, u128 carried) {
    DustRec d = {node, gen, tid, day, carried};
    return vec_push(&w->dust, &d);
}

/* key order of events equal in (time, phase): tx hash, then (kind, position), then edge id. `EV_W` is the walk the
   comparators read: set right before its sorts, which run holding the GIL with no callback into Python in between */
static const VW *EV_W;
static int ev_cmp(const void *pa, const void *pb) {
    const Ev *a = pa, *b = pb;
    if (a->t != b->t) return a->t < b->t ? -1 : 1;
    if (a->phase != b->phase) return a->phase < b->phase ? -1 : 1;
    int c = memcmp(EV_W->tx + 32 * (size_t)a->e, EV_W->tx + 32 * (size_t)b->e, 32);
    if (c) return c;
    int32_t ka = EV_W->kind_rank[EV_W->kind[a->e]], kb = EV_W->kind_rank[EV_W->kind[b->e]];
    if (ka != kb) return ka < kb ? -1 : 1;
    return (a->e > b->e) - (a->e < b->e);
}

static int tx_cmp(const void *pa, const void *pb) {
    int32_t a = *(const int32_t *)pa, b = *(const int32_t *)pb;
    return memcmp(EV_W->tx + 32 * (size_t)a, EV_W->tx + 32 * (size_t)b, 32);
}

/* first index in `edges` (sorted by tx) whose tx equals edge e's, or -1 */
static Py_ssize_t tx_find(VW *w, const Vec *edges, int32_t e) {
    const int32_t *items = (const int32_t *)edges->data;
    Py_ssize_t lo = 0, hi = edges->len;
    const uint8_t *key = w->tx + 32 * (size_t)e;
    while (lo < hi) {
        Py_ssize_t mid = lo + (hi - lo) / 2;
        if (memcmp(w->tx + 32 * (size_t)items[mid], key, 32) < 0) lo = mid + 1;
        else hi = mid;
    }
    return lo < edges->len && !memcmp(w->tx + 32 * (size_t)items[lo], key, 32) ? lo : -1;
}

static int vw_fresh_node(VW *w, int32_t node, int32_t hop, int64_t arrived, Vec *fresh) {
    VNode n;
    memset(&n, 0, sizeof n);
    n.node = node;
    n.hop = hop;
    n.arrived = arrived;
    n.degree = -1;
    n.stop = ST_HOP_BUDGET;
    n.totals_at = -1;
    int32_t index = (int32_t)w->nodes.len;
    if (vec_push(&w->nodes, &n) < 0 || map_put(&w->index, node, index) < 0) return -1;
    return fresh ? vec_push(fresh, &node) : 0;
}

/* ask for the columns of the edge `ahead` places further in an adjacency list before it is read: the walk's time on a
   big graph is cache misses on these columns, and asked ahead they overlap (hints only) */
#define VW_AHEAD 12
static inline void vw_prefetch(const VW *w, const int32_t *adj, int64_t i, int64_t hi, const int32_t *end_of) {
    if (i + VW_AHEAD < hi) {
        int32_t e = adj[i + VW_AHEAD];
        __builtin_prefetch(&end_of[e]);
        __builtin_prefetch(&w->vhi[e]);
        __builtin_prefetch(&w->vlo[e]);
        __builtin_prefetch(&w->token[e]);
        __builtin_prefetch(&w->ts[e]);
    }
}

/* One address expanded: its history in the window, its ledger, the follow rule, and the walk going on along the
   transfers it picked (`_trace_value`'s loop body over `graph_history` + `select_value_graph`). */
static int vw_expand(VW *w, int32_t node, int is_root, int64_t since, int64_t until, int32_t hop, Vec *fresh) {
    VNode *n = vnode(w, node);
    const int out = w->outgoing;
    int64_t lo = w->off[0][node], hi = w->off[0][node + 1];
    int64_t degree = hi - lo;
    n->expanded++;
    n->degree = degree;
    if (degree > w->hub_degree && !is_root) {
        n->stop = ST_BUSY;
        return set_cut(w, node, hop, VCUT_BUSY, 0, degree);
    }
    if (!degree) {
        n->stop = ST_NO_DATA;
        return 0;
    }
    n->stop = ST_EXPANDED;
    if (since != NO_TIME) lo = lower_bound(w->stamps[0], lo, hi, since);
    if (until != NO_TIME) hi = upper_bound(w->stamps[0], lo, hi, until);
    int64_t in_window = hi - lo, scanned = in_window;
    if (in_window > w->scan_limit) {
        scanned = w->scan_limit;
        if (out) hi = lo + scanned;
        else lo = hi - scanned;
    }
    w->n_slots = 0;
    w->sends.len = w->receives.len = w->events.len = w->steps.len = 0;
    for (int64_t i = lo; i < hi; i++) {
        vw_prefetch(w, w->adj[0], i, hi, w->far);
        int32_t e = w->adj[0][i];
        if (w->far[e] == node) continue;
        u128 v;
        if (edge_value(w, e, &v) < 0) return 0;
        if (!v) continue;
        if (w->filter_mode && w->token[e] != w->wanted) continue;
        Slot *s = slot_of(w, w->token[e]);
        if (!s) return 0;
        int overflow = 0;
        s->sent_total = sat_add(s->sent_total, v, &overflow);
        if (overflow) {
            w->unsupported = 1;
            return 0;
        }
        s->in_sends = 1;
        if (vec_push(&w->sends, &e) < 0) return -1;
    }
    /* its totals in the direction (replacing an earlier expansion's) */
    PyObject *dict = PyDict_New();
    if (!dict) return -1;
    for (int i = 0; i < w->n_slots; i++) {
        PyObject *key = PyLong_FromLong(w->slots[i].tid), *val = u128_to_py(w->slots[i].sent_total);
        int bad = !key || !val || PyDict_SetItem(dict, key, val) < 0;
        Py_XDECREF(key);
        Py_XDECREF(val);
        if (bad) {
            Py_DECREF(dict);
            return -1;
        }
    }
    n = vnode(w, node);
    if (n->totals_at >= 0) {
        Py_SETREF(AT(w->totals, TotRec, n->totals_at).dict, dict);
    } else {
        TotRec rec = {node, dict};
        n->totals_at = (int32_t)w->totals.len;
        if (vec_push(&w->totals, &rec) < 0) {
            Py_DECREF(dict);
            return -1;
        }
    }
    Py_ssize_t n_sends = w->sends.len;
    const int32_t *sends = (const int32_t *)w->sends.data;
    int root = is_root;
    if (n_sends && !root) {
        int64_t first = w->ts[sends[0]], last = w->ts[sends[n_sends - 1]];
        int64_t rlo = out ? since : first, rhi = out ? last : until;
        int64_t a = w->off[1][node], b = w->off[1][node + 1];
        int64_t wa = rlo != NO_TIME ? lower_bound(w->stamps[1], a, b, rlo) : a;
        int64_t wb = rhi != NO_TIME ? upper_bound(w->stamps[1], wa, b, rhi) : b;
        for (int64_t i = wa; i < wb; i++) {
            vw_prefetch(w, w->adj[1], i, wb, w->near);
            int32_t e = w->adj[1][i];
            if (w->near[e] == node) continue;
            u128 v;
            if (edge_value(w, e, &v) < 0) return 0;
            if (!v) continue;
            if (!slot_of(w, w->token[e])) return 0;
            if (vec_push(&w->receives, &e) < 0) return -1;
        }
        /* the opening balance: its own history before the traced funds reached it (received less sent) */
        int64_t start = out ? since : until;
        if (start != NO_TIME) {
            u128 plus[MAX_SLOTS], minus[MAX_SLOTS];
            memset(plus, 0, sizeof plus);
            memset(minus, 0, sizeof minus);
            for (int way = 1; way >= 0; way--) { /* 1: the other way, received (+); 0: the trace direction (-) */
                int64_t x = w->off[way][node], y = w->off[way][node + 1];
                if (out) y = lower_bound(w->stamps[way], x, y, start);
                else x = upper_bound(w->stamps[way], x, y, start);
                const int32_t *other = way ? w->near : w->far;
                for (int64_t i = x; i < y; i++) {
                    vw_prefetch(w, w->adj[way], i, y, other);
                    int32_t e = w->adj[way][i];
                    if (other[e] == node) continue;
                    u128 v;
                    if (edge_value(w, e, &v) < 0) return 0;
                    if (!v) continue;
                    Slot *s = slot_of(w, w->token[e]);
                    if (!s) return 0;
                    int k = (int)(s - w->slots), overflow = 0;
                    if (way) plus[k] = sat_add(plus[k], v, &overflow);
                    else minus[k] = sat_add(minus[k], v, &overflow);
                    if (overflow) {
                        w->unsupported = 1;
                        return 0;
                    }
                }
            }
            for (int k = 0; k < w->n_slots; k++) {
                Slot *s = &w->slots[k];
                s->clean = plus[k] > minus[k] ? plus[k] - minus[k] : 0;
                if (w->model == MODEL_FIFO && s->clean) {
                    Lot lot = {s->clean, 0};
                    if (vec_push(&s->lots, &lot) < 0) return -1;
                }
            }
        }
    }
    Py_ssize_t n_recv = w->receives.len;
    const int32_t *receives = (const int32_t *)w->receives.data;
    EV_W = w;
    /* swaps: a transaction where it sends one asset and receives another */
    w->swap_tx.len = w->swap_share.len = 0;
    if (w->n_slots > 1 && n_recv) {
        w->order.len = 0;
        for (Py_ssize_t i = 0; i < n_sends; i++)
            if (vec_push(&w->order, &sends[i]) < 0) return -1;
        qsort(w->order.data, (size_t)w->order.len, sizeof(int32_t), tx_cmp);
        for (Py_ssize_t i = 0; i < n_recv; i++) {
            int32_t r = receives[i];
            Py_ssize_t at = tx_find(w, &w->order, r);
            if (at < 0) continue;
            int same = 0;
            for (Py_ssize_t k = at; k < w->order.len; k++) {
                int32_t s = AT(w->order, int32_t, k);
                if (memcmp(w->tx + 32 * (size_t)s, w->tx + 32 * (size_t)r, 32)) break;
                if (w->token[s] == w->token[r]) same = 1;
            }
            if (!same && vec_push(&w->swap_tx, &r) < 0) return -1;
        }
        if (w->swap_tx.len) {
            qsort(w->swap_tx.data, (size_t)w->swap_tx.len, sizeof(int32_t), tx_cmp);
            Py_ssize_t kept = 0; /* one entry per transaction */
            for (Py_ssize_t i = 0; i < w->swap_tx.len; i++) {
                int32_t e = AT(w->swap_tx, int32_t, i);
                if (kept && !memcmp(w->tx + 32 * (size_t)AT(w->swap_tx, int32_t, kept - 1), w->tx + 32 * (size_t)e, 32))
                    continue;
                AT(w->swap_tx, int32_t, kept++) = e;
            }
            w->swap_tx.len = kept;
            u128 init[2] = {0, 1};
            for (Py_ssize_t i = 0; i < kept; i++)
                if (vec_push(&w->swap_share, init) < 0) return -1;
        }
    }
    /* events in time order (backward: reversed), arrivals before departures at the same time but a swap's
       proceeds; ties by (tx hash, kind, position) */
    for (Py_ssize_t i = 0; i < n_recv; i++) {
        int32_t e = receives[i];
        Ev ev = {out ? w->ts[e] : -w->ts[e], (w->swap_tx.len && tx_find(w, &w->swap_tx, e) >= 0) ? 2 : 0, e};
        if (vec_push(&w->events, &ev) < 0) return -1;
        if (map_get(&w->seen, e, -1) >= 0) slot_of(w, w->token[e])->traced_asset = 1;
    }
    for (Py_ssize_t i = 0; i < n_sends; i++) {
        Ev ev = {out ? w->ts[sends[i]] : -w->ts[sends[i]], 1, sends[i]};
        if (vec_push(&w->events, &ev) < 0) return -1;
    }
    qsort(w->events.data, (size_t)w->events.len, sizeof(Ev), ev_cmp);
    if (!root && w->model == MODEL_HAIRCUT) {
        /* money its transfers need that its history does not show: there from the start, clean (haircut only;
           `tracing.trace.value.shortfall`): the least opening that keeps every running balance from going below
           zero, added to the opening */
        u128 held[MAX_SLOTS], lacking[MAX_SLOTS];
        for (int k = 0; k < w->n_slots; k++) {
            held[k] = w->slots[k].clean;
            lacking[k] = 0;
        }
        int overflow = 0;
        for (Py_ssize_t i = 0; i < w->events.len; i++) {
            Ev ev = AT(w->events, Ev, i);
            u128 value = 0;
            edge_value(w, ev.e, &value);
            int k = (int)(slot_of(w, w->token[ev.e]) - w->slots);
            if (ev.phase != 1) {
                held[k] = sat_add(held[k], value, &overflow);
            } else if (held[k] >= value) {
                held[k] -= value;
            } else {
                lacking[k] = sat_add(lacking[k], value - held[k], &overflow);
                held[k] = 0;
            }
        }
        for (int k = 0; k < w->n_slots; k++) w->slots[k].clean = sat_add(w->slots[k].clean, lacking[k], &overflow);
        if (overflow) {
            w->unsupported = 1;
            return 0;
        }
    }
    int any_traced = 0, traced_sent = 0;
    for (int k = 0; k < w->n_slots; k++) {
        if (w->slots[k].traced_asset) {
            any_traced = 1;
            if (w->slots[k].in_sends) traced_sent = 1;
        }
    }
    int converted = !root && any_traced && !traced_sent;
    if (root)
        for (int k = 0; k < w->n_slots; k++) w->slots[k].received = w->slots[k].sent_total;
    const int model = w->model;
    const int passing = !root && model == MODEL_HAIRCUT && w->rule.pass_on;
    for (Py_ssize_t i = 0; i < w->events.len; i++) {
        Ev ev = AT(w->events, Ev, i);
        int32_t e = ev.e;
        u128 value = 0;
        edge_value(w, e, &value);
        Slot *s = slot_of(w, w->token[e]);
        if (ev.phase != 1) {
            int32_t at = map_get(&w->seen, e, -1);
            u128 arrived = at >= 0 ? AT(w->carried, u128, at) : 0;
            if (ev.phase == 2) {
                Py_ssize_t k = tx_find(w, &w->swap_tx, e);
                u128 *share = &AT(w->swap_share, u128, 2 * k);
                u128 swapped = mul_div(value, share[0], share[1]);
                if (swapped > arrived) arrived = swapped;
            }
            u128 got = arrived < value ? arrived : value;
            int overflow = 0;
            s->traced = sat_add(s->traced, got, &overflow);
            s->clean = sat_add(s->clean, value - got, &overflow);
            if (arrived) s->received = sat_add(s->received, arrived, &overflow);
            if (overflow) {
                w->unsupported = 1;
                return 0;
            }
            if (model == MODEL_FIFO) {
                Lot lot = {value, got};
                if (vec_push(&s->lots, &lot) < 0) return -1;
            }
            if (passing && ev.phase == 0 && got && cmp_mul(got, w->rule.pure_den, w->rule.pure_num, value) >= 0) {
                Receipt rc = {value, got, w->ts[e], e};
                if (vec_push(&s->receipts, &rc) < 0) return -1;
            }
            continue;
        }
        u128 carried;
        Py_ssize_t swap_k = w->swap_tx.len ? tx_find(w, &w->swap_tx, e) : -1; /* into a swap: its transaction */
        u128 passed = 0;
        int32_t receipt = -1;
        if (root) {
            carried = value;
        } else if (passing && swap_k < 0 && pass_match(&w->rule, s, out, value, w->ts[e], &passed, &receipt)) {
            /* a receipt passed on (`PassThrough`): it carries the receipt's traced value */
            u128 t_held = s->traced, c_held = s->clean;
            carried = value < passed ? value : passed;
            if (carried > t_held) carried = t_held;
            s->traced = t_held - carried;
            u128 clean_out = value - carried;
            s->clean = c_held > clean_out ? c_held - clean_out : 0;
        } else {
            u128 t_held = s->traced, c_held = s->clean;
            if (model == MODEL_POISON) {
                carried = t_held ? value : 0;
                s->clean = c_held > value ? c_held - value : 0;
            } else {
                int overflow = 0;
                u128 held = sat_add(t_held, c_held, &overflow);
                if (overflow) {
                    w->unsupported = 1;
                    return 0;
                }
                if (held && (held >= value || !s->has_last)) {
                    s->last_num = t_held;
                    s->last_den = held;
                    s->has_last = 1;
                }
                if (model == MODEL_FIFO) {
                    u128 left = value;
                    carried = 0;
                    Lot *lots = (Lot *)s->lots.data;
                    while (left && s->head < s->lots.len) {
                        Lot *lot = &lots[s->head];
                        if (lot->value <= left) {
                            carried += lot->traced;
                            left -= lot->value;
                            s->head++;
                        } else {
                            u128 part = mul_div(lot->traced, left, lot->value);
                            carried += part;
                            lot->value -= left;
                            lot->traced -= part;
                            left = 0;
                        }
                    }
                    if (left && s->has_last) carried += mul_div(left, s->last_num, s->last_den);
                    if (carried > value) carried = value;
                    if (carried > t_held) carried = t_held;
                } else if (value <= held) {
                    carried = mul_div(value, t_held, held);
                } else {
                    carried = t_held; /* traced funds are conserved: an overdraft carries no more than it holds */
                }
                s->traced = t_held - carried;
                u128 clean_out = value - carried;
                s->clean = c_held > clean_out ? c_held - clean_out : 0;
            }
        }
        if (converted && !carried && !s->traced_asset) {
            /* the largest traced share of what it holds of the traced assets it received */
            u128 best_num = 0, best_den = 1;
            for (int k = 0; k < w->n_slots; k++) {
                Slot *x = &w->slots[k];
                if (!x->traced_asset || !x->traced) continue;
                u128 num = model == MODEL_POISON ? 1 : x->traced, den = model == MODEL_POISON ? 1 : x->traced + x->clean;
                if (cmp_mul(num, best_den, best_num, den) > 0) {
                    best_num = num;
                    best_den = den;
                }
            }
            carried = mul_div(value, best_num, best_den);
        }
        VStep step = {.e = e, .slot = (int32_t)(s - w->slots), .receipt = receipt, .why = WHY_FLOOR};
        step.carried = carried;
        if (swap_k >= 0) {
            u128 *share = &AT(w->swap_share, u128, 2 * swap_k);
            if (cmp_mul(carried, share[1], share[0], value) > 0) {
                share[0] = carried;
                share[1] = value;
            }
            step.swap = 1;
        }
        if (vec_push(&w->steps, &step) < 0) return -1;
    }
    /* the follow rule over its steps (`_follow`) */
    n = vnode(w, node);
    int32_t gen = ++n->dust_gen;
    int64_t dust_count = 0, dust_priced = 0;
    Py_ssize_t n_steps = w->steps.len;
    w->chosen.len = w->small.len = 0; /* chosen: passing step indices; small: (index, day or -1) */
    for (Py_ssize_t i = 0; i < n_steps; i++) {
        VStep *st = &AT(w->steps, VStep, i);
        if (st->swap || !st->carried) continue;
        int32_t e = st->e, tid = w->token[e];
        Slot *s = &w->slots[st->slot];
        u128 value = 0;
        edge_value(w, e, &value);
        if (w->use_min_value && value < (((u128)w->min_hi[tid + 1] << 64) | w->min_lo[tid + 1])) continue;
        PriceRec *price = NULL;
        if (w->use_min_usd) {
            if (!(price = price_of(w, tid, w->ts[e]))) return -1;
            if (!price->has) w->no_price[tid + 1] = 1;
            else if (value < price->min) continue;
        }
        FollowIn in = {st->carried, value, s->received, root, 0, 0, 0};
        int64_t day = -1;
        if (w->use_dust_usd) {
            if (!price && !(price = price_of(w, tid, w->ts[e]))) return -1;
            if (price->has) {
                day = price->day;
                in.floor_kind = 1;
                in.floor = price->floor;
                in.cap = price->cap;
            }
        }
        if (day < 0) {
            if (w->unit_has[tid + 1]) {
                in.floor_kind = 1;
                in.floor = ((u128)w->unit_hi[tid + 1] << 64) | w->unit_lo[tid + 1];
                if (__builtin_mul_overflow(in.floor, w->rule.crumb_cap, &in.cap)) in.cap = U128_MAX;
            } else {
                w->unfloored[tid + 1] = 1;
            }
        }
        int verdict = follow_rule(&w->rule, &in);
        if (verdict == F_PASS || verdict == F_SHARE) {
            int32_t at = (int32_t)i;
            st->why = verdict == F_SHARE ? WHY_SHARE : in.floor_kind ? WHY_FLOOR : WHY_NO_FLOOR;
            if (vec_push(&w->chosen, &at) < 0) return -1;
        } else if (verdict == F_SMALL) {
            int64_t rec[2] = {i, day};
            if (vec_push(&w->small, rec) < 0) return -1;
        } else {
            dust_count++;
            dust_priced += day >= 0;
            if (add_dust(w, node, gen, tid, day, st->carried) < 0) return -1;
        }
    }
    if (w->small.len) {
        int overflow = 0;
        for (int k = 0; k < w->n_slots; k++) w->slots[k].spread = 0;
        for (Py_ssize_t j = 0; j < w->small.len; j++) {
            VStep *st = &AT(w->steps, VStep, (&AT(w->small, int64_t, 2 * j))[0]);
            Slot *s = &w->slots[st->slot];
            s->spread = sat_add(s->spread, st->carried, &overflow);
        }
        if (overflow) {
            w->unsupported = 1;
            return 0;
        }
        int any = 0;
        for (Py_ssize_t j = 0; j < w->small.len; j++) {
            int64_t i = (&AT(w->small, int64_t, 2 * j))[0], day = (&AT(w->small, int64_t, 2 * j))[1];
            VStep *st = &AT(w->steps, VStep, i);
            Slot *s = &w->slots[st->slot];
            if (spread_passes(&w->rule, s->spread, s->received)) {
                int32_t at = (int32_t)i;
                st->why = WHY_TOGETHER;
                if (vec_push(&w->chosen, &at) < 0) return -1;
                any = 1;
            } else {
                dust_count++;
                dust_priced += day >= 0;
                if (add_dust(w, node, gen, w->token[st->e], day, st->carried) < 0) return -1;
            }
        }
        if (any) { /* passing steps back in step order */
            int32_t *items = (int32_t *)w->chosen.data;
            for (Py_ssize_t a = 1; a < w->chosen.len; a++) {
                int32_t x = items[a];
                Py_ssize_t b = a;
                while (b > 0 && items[b - 1] > x) {
                    items[b] = items[b - 1];
                    b--;
                }
                items[b] = x;
            }
        }
    }
    n = vnode(w, node);
    n->dust_count = dust_count;
    n->dust_priced = dust_priced;
    /* counterparties, and the fan-out cap (largest traced amounts first, per asset) */
    map_clear(&w->parties);
    w->party_sums.len = 0;
    int multi = 0;
    int32_t first_tid = 0;
    for (Py_ssize_t j = 0; j < w->chosen.len; j++) {
        VStep *st = &AT(w->steps, VStep, AT(w->chosen, int32_t, j));
        int32_t party = w->far[st->e], tid = w->token[st->e];
        if (!j) first_tid = tid;
        else if (tid != first_tid) multi = 1;
        int32_t slot = map_get(&w->parties, party, -1);
        if (slot < 0) {
            VParty rec = {party, 0, 0, tid, 0};
            slot = (int32_t)w->party_sums.len;
            if (vec_push(&w->party_sums, &rec) < 0 || map_put(&w->parties, party, slot) < 0) return -1;
        }
        VParty *rec = &AT(w->party_sums, VParty, slot);
        int overflow = 0;
        rec->sum = sat_add(rec->sum, st->carried, &overflow);
        if (overflow) {
            w->unsupported = 1;
            return 0;
        }
    }
    int64_t counterparties = (int64_t)w->party_sums.len, kept = counterparties;
    if (counterparties > w->fanout) {
        kept = w->fanout;
        if (!multi) {
            w->order.len = 0;
            for (int32_t i = 0; i < (int32_t)counterparties; i++)
                if (vec_push(&w->order, &i) < 0) return -1;
            if (vsort_vec(w, &w->order, vw_party_less) < 0) return -1;
            for (int64_t i = 0; i < w->fanout; i++) AT(w->party_sums, VParty, AT(w->order, int32_t, i)).keep = 1;
        } else { /* ranked per asset by `rank_counterparties`, in Python */
            PyObject *amounts = PyDict_New();
            if (!amounts) return -1;
            for (Py_ssize_t j = 0; j < w->chosen.len; j++) {
                VStep *st = &AT(w->steps, VStep, AT(w->chosen, int32_t, j));
                PyObject *party = PyLong_FromLong(w->far[st->e]), *tid = PyLong_FromLong(w->token[st->e]);
                PyObject *mine = party ? PyDict_GetItemWithError(amounts, party) : NULL;
                PyObject *old = NULL, *sum = NULL, *add = u128_to_py(st->carried);
                int bad = !party || !tid || !add || PyErr_Occurred();
                if (!bad && !mine) {
                    mine = PyDict_New();
                    bad = !mine || PyDict_SetItem(amounts, party, mine) < 0;
                    Py_XDECREF(mine); /* held by `amounts` */
                }
                if (!bad) {
                    old = PyDict_GetItemWithError(mine, tid);
                    sum = old ? PyNumber_Add(old, add) : Py_NewRef(add);
                    bad = !sum || PyDict_SetItem(mine, tid, sum) < 0;
                }
                Py_XDECREF(party);
                Py_XDECREF(tid);
                Py_XDECREF(add);
                Py_XDECREF(sum);
                if (bad) {
                    Py_DECREF(amounts);
                    return -1;
                }
            }
            PyObject *res = PyObject_CallFunction(w->rank_cb, "Nn", amounts, (Py_ssize_t)w->fanout);
            if (!res) return -1;
            PyObject *seq = PySequence_Fast(res, "rank callback must return a sequence");
            Py_DECREF(res);
            if (!seq) return -1;
            for (Py_ssize_t j = 0; j < PySequence_Fast_GET_SIZE(seq); j++) {
                long party = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, j));
                int32_t slot = (party == -1 && PyErr_Occurred()) ? -1 : map_get(&w->parties, (int32_t)party, -1);
                if (slot < 0) {
                    Py_DECREF(seq);
                    if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "rank callback: unknown party");
                    return -1;
                }
                AT(w->party_sums, VParty, slot).keep = 1;
            }
            Py_DECREF(seq);
        }
        Py_ssize_t k = 0;
        for (Py_ssize_t j = 0; j < w->chosen.len; j++) {
            int32_t i = AT(w->chosen, int32_t, j);
            VStep *st = &AT(w->steps, VStep, i);
            if (AT(w->party_sums, VParty, map_get(&w->parties, w->far[st->e], 0)).keep) AT(w->chosen, int32_t, k++) = i;
        }
        w->chosen.len = k;
    }
    if (set_cut(w, node, hop, VCUT_DUST, w->chosen.len, dust_count) < 0 ||
        set_cut(w, node, hop, VCUT_FANOUT, kept, counterparties - kept) < 0 ||
        set_cut(w, node, hop, VCUT_SCAN, scanned, in_window - scanned) < 0)
        return -1;
    /* the walk goes on along the chosen transfers */
    for (Py_ssize_t j = 0; j < w->chosen.len; j++) {
        VStep *st = &AT(w->steps, VStep, AT(w->chosen, int32_t, j));
        int32_t e = st->e;
        u128 carried = st->carried;
        uint8_t why = (uint8_t)st->why;
        int32_t at = map_get(&w->seen, e, -1);
        if (at < 0) {
            int32_t next = hop + 1;
            at = (int32_t)w->followed.len;
            if (vec_push(&w->followed, &e) < 0 || vec_push(&w->followed_hop, &next) < 0 ||
                vec_push(&w->carried, &carried) < 0 || vec_push(&w->why, &why) < 0 ||
                vec_push(&w->passes, &st->receipt) < 0 || map_put(&w->seen, e, at) < 0)
                return -1;
            w->sources[w->srccol[e]] = 1;
        } else if (carried <= AT(w->carried, u128, at)) {
            continue;
        } else {
            AT(w->carried, u128, at) = carried;
            AT(w->why, uint8_t, at) = why;
            AT(w->passes, int32_t, at) = st->receipt;
        }
        int32_t far = w->far[e];
        int64_t when = w->ts[e];
        VNode *r = vnode(w, far);
        if (!r) {
            if (vw_fresh_node(w, far, hop + 1, when, fresh) < 0) return -1;
            r = vnode(w, far);
        } else if (r->arrived != NO_TIME && r->hop) {
            if (out ? when < r->arrived : when > r->arrived) r->arrived = when;
        }
        if (!r->hop) continue; /* a root: traced through and through */
        int32_t tid = w->token[e];
        int dec = w->tokdec[tid + 1];
        if (dec < 0 || dec > 19) {
            w->unsupported = 1;
            return 0;
        }
        double size = div_round(carried, POW10[dec]);
        if (r->hop == hop + 1 && size > r->weight) r->weight = size;
        if (r->expanded && r->expanded <= w->revisits && !r->terminal)
            if (vec_push(&w->pending[r->hop], &far) < 0) return -1;
    }
    return 0;
}

static int vw_labels(VW *w, Vec *fresh) {
    if (!fresh->len) return 0;
    if (w->marks) {
        for (Py_ssize_t i = 0; i < fresh->len; i++) {
            int32_t node = AT(*fresh, int32_t, i);
            uint8_t mark = node < w->n_marks ? w->marks[node] : 0;
            if (mark && vec_push(&w->labelled, &node) < 0) return -1;
            VNode *r = vnode(w, node);
            if (mark == 2) {
                r->terminal = 1;
                r->stop = ST_SERVICE;
            } else if (r->hop < w->hops && vec_push(&w->pending[r->hop], &node) < 0) {
                return -1;
            }
        }
        return 0;
    }
    PyObject *ids = PyList_New(fresh->len);
    if (!ids) return -1;
    for (Py_ssize_t i = 0; i < fresh->len; i++) {
        PyObject *id = PyLong_FromLong(AT(*fresh, int32_t, i));
        if (!id) {
            Py_DECREF(ids);
            return -1;
        }
        PyList_SET_ITEM(ids, i, id);
    }
    PyObject *terminal = PyObject_CallOneArg(w->label_cb, ids);
    Py_DECREF(ids);
    if (!terminal) return -1;
    PyObject *seq = PySequence_Fast(terminal, "label callback must return a sequence");
    Py_DECREF(terminal);
    if (!seq) return -1;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq); i++) {
        long node = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        VNode *r = (node == -1 && PyErr_Occurred()) ? NULL : vnode(w, (int32_t)node);
        if (!r) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "terminal node was not reached");
            return -1;
        }
        r->terminal = 1;
        r->stop = ST_SERVICE;
    }
    Py_DECREF(seq);
    for (Py_ssize_t i = 0; i < fresh->len; i++) {
        int32_t node = AT(*fresh, int32_t, i);
        VNode *r = vnode(w, node);
        if (!r->terminal && r->hop < w->hops && vec_push(&w->pending[r->hop], &node) < 0) return -1;
    }
    return 0;
}

static int vw_run(VW *w, const int32_t *roots, Py_ssize_t n_roots) {
    Vec frontier = VEC(int32_t), fresh = VEC(int32_t), windows = VEC(int64_t);
    int rc = -1;
    for (Py_ssize_t i = 0; i < n_roots; i++) {
        if (vnode(w, roots[i])) continue;
        if (vw_fresh_node(w, roots[i], 0, NO_TIME, NULL) < 0 || vec_push(&w->pending[0], &roots[i]) < 0) goto done;
        if (i && w->marks && roots[i] < w->n_marks && w->marks[roots[i]] && vec_push(&w->labelled, &roots[i]) < 0)
            goto done;
    }
    for (;;) {
        int32_t hop = -1;
        for (int32_t h = 0; h <= w->hops; h++)
            if (w->pending[h].len) {
                hop = h;
                break;
            }
        if (hop < 0) break;
        /* the frontier: each address once, largest arrival first, then by address */
        map_clear(&w->mark);
        frontier.len = 0;
        for (Py_ssize_t i = 0; i < w->pending[hop].len; i++) {
            int32_t node = AT(w->pending[hop], int32_t, i);
            int got = map_put(&w->mark, node, 1);
            if (got < 0 || (got == 1 && vec_push(&frontier, &node) < 0)) goto done;
        }
        w->pending[hop].len = 0;
        if (vsort_vec(w, &frontier, vw_frontier_less) < 0) goto done;
        fresh.len = 0;
        Py_ssize_t n = frontier.len, start = 0;
        while (start < n) {
            Py_ssize_t reached = w->nodes.len;
            if (reached >= w->max_nodes) {
                for (Py_ssize_t i = start; i < n; i++) {
                    int32_t node = AT(frontier, int32_t, i);
                    VNode *r = vnode(w, node);
                    if (r->expanded) continue;
                    r->stop = ST_NODE_BUDGET;
                    /* a node-budget cut drops nothing but is kept (set in place, or appended) */
                    VCut c = {node, hop, VCUT_BUDGET, 1, 0, 0};
                    int32_t key = node * N_VCUT + VCUT_BUDGET, at = map_get(&w->cut_at, key, -1);
                    if (at >= 0) AT(w->cuts, VCut, at) = c;
                    else {
                        at = (int32_t)w->cuts.len;
                        if (vec_push(&w->cuts, &c) < 0 || map_put(&w->cut_at, key, at) < 0) goto done;
                    }
                }
                break;
            }
            int64_t size = (w->max_nodes - reached) / w->fanout + 1;
            if (size > BATCH) size = BATCH;
            if (size < 1) size = 1;
            Py_ssize_t stop = start + size < n ? start + size : n;
            /* the batch's windows, as its requests are made before any of it is expanded */
            windows.len = 0;
            for (Py_ssize_t i = start; i < stop; i++) {
                VNode *r = vnode(w, AT(frontier, int32_t, i));
                int64_t since = w->since, until = w->until, root = r->hop == 0;
                if (r->arrived != NO_TIME) {
                    if (w->outgoing) since = (since == NO_TIME || r->arrived > since) ? r->arrived : since;
                    else until = (until == NO_TIME || r->arrived < until) ? r->arrived : until;
                }
                if (vec_push(&windows, &since) < 0 || vec_push(&windows, &until) < 0 || vec_push(&windows, &root) < 0)
                    goto done;
            }
            for (Py_ssize_t i = start; i < stop; i++) { /* the batch's offsets and first edges, asked ahead */
                int32_t node = AT(frontier, int32_t, i);
                for (int way = 0; way < 2; way++) {
                    __builtin_prefetch(&w->off[way][node]);
                    __builtin_prefetch(&w->off[way][node + 1]);
                }
            }
            for (Py_ssize_t i = start; i < stop; i++) {
                int32_t node = AT(frontier, int32_t, i);
                for (int way = 0; way < 2; way++) {
                    int64_t a = w->off[way][node], b = w->off[way][node + 1];
                    for (int64_t k = a; k < b && k < a + 32; k += 16) __builtin_prefetch(&w->adj[way][k]);
                    for (int64_t k = a; k < b && k < a + 32; k += 8) __builtin_prefetch(&w->stamps[way][k]);
                }
            }
            for (Py_ssize_t i = start; i < stop; i++) {
                int64_t *win = &AT(windows, int64_t, 3 * (i - start));
                if (vw_expand(w, AT(frontier, int32_t, i), (int)win[2], win[0], win[1], hop, &fresh) < 0) goto done;
                if (w->unsupported) {
                    rc = 0;
                    goto done;
                }
            }
            start = stop;
        }
        if (vw_labels(w, &fresh) < 0) goto done;
    }
    rc = 0;
done:
    free(frontier.data);
    free(fresh.data);
    free(windows.data);
    if (rc < 0 && !PyErr_Occurred()) PyErr_NoMemory();
    return rc;
}

static int dust_cmp(const void *pa, const void *pb) {
    const DustRec *a = pa, *b = pb;
    if (a->tid != b->tid) return a->tid < b->tid ? -1 : 1;
    return (a->day > b->day) - (a->day < b->day);
}

static PyObject *flags_of(const uint8_t *flags, Py_ssize_t n) {
    PyObject *list = PyList_New(0);
    for (Py_ssize_t i = 0; list && i < n; i++) {
        if (!flags[i]) continue;
        PyObject *tid = PyLong_FromSsize_t(i - 1);
        if (!tid || PyList_Append(list, tid) < 0) Py_CLEAR(list);
        Py_XDECREF(tid);
    }
    return list;
}

PyDoc_STRVAR(value_walk_doc,
             "value_walk(columns, names, roots, params, label_cb, price_cb, rank_cb, marks=None) -> tuple | None\n\n"
             "The value-aware trace walk over the graph's arrays (see tracing.trace.compiled.compiled_value_trace for "
             "the columns, parameters, callbacks and result); None when the graph or parameters need the Python walk.");

static PyObject *value_walk(PyObject *self, PyObject *args) {
    PyObject *columns, *names, *roots_obj, *params, *label_cb, *price_cb, *rank_cb, *marks_obj = Py_None;
    if (!PyArg_ParseTuple(args, "OO!OOOOO|O", &columns, &PyList_Type, &names, &roots_obj, &params, &label_cb,
                          &price_cb, &rank_cb, &marks_obj))
        return NULL;
    VW w;
    memset(&w, 0, sizeof w);
    PyObject *since_obj, *until_obj;
    long long fanout, max_nodes, scan_limit, hub_degree;
    unsigned long long r[13];
    if (!PyArg_ParseTuple(params, "iiOOLLLLiiiiiii(KKKKKKKKKKKKK)", &w.outgoing, &w.hops, &since_obj, &until_obj,
                          &fanout, &max_nodes, &scan_limit, &hub_degree, &w.filter_mode, &w.wanted, &w.model,
                          &w.use_min_value, &w.use_dust_usd, &w.use_min_usd, &w.revisits, &r[0], &r[1], &r[2], &r[3],
                          &r[4], &r[5], &r[6], &r[7], &r[8], &r[9], &r[10], &r[11], &r[12]))
        return NULL;
    w.rule = (Rule){r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9], r[10], r[11], r[12]};
    if (!w.rule.fee_den) {
        PyErr_SetString(PyExc_ValueError, "PASS_FEE: a zero denominator");
        return NULL;
    }
    static const char *col_names[] = {"off", "adj", "stamps", "other_off", "other_adj", "other_stamps", "far", "near",
                                      "ts", "value_lo", "value_hi", "token", "source", "tx", "kind", "kind_rank",
                                      "decimals", "min_lo", "min_hi", "floor_lo", "floor_hi", "floor_has"};
    static const Py_ssize_t sizes[] = {8, 4, 8, 8, 4, 8, 4, 4, 8, 8, 8, 4, 1, 32, 4, 4, 4, 8, 8, 8, 8, 1};
    enum { N_VCOLS = 22 };
    if (!PyTuple_Check(columns) || PyTuple_GET_SIZE(columns) != N_VCOLS) {
        PyErr_SetString(PyExc_TypeError, "columns: a tuple of 22 arrays");
        return NULL;
    }
    Py_buffer views[N_VCOLS], marks_view, roots_view;
    int got = 0, have_marks = 0, have_roots = 0;
    PyObject *out = NULL;
    for (; got < N_VCOLS; got++)
        if (get_buffer(PyTuple_GET_ITEM(columns, got), &views[got], sizes[got], col_names[got]) < 0) goto fail;
    if (get_buffer(roots_obj, &roots_view, 4, "roots") < 0) goto fail;
    have_roots = 1;
    if (marks_obj != Py_None) {
        if (get_buffer(marks_obj, &marks_view, 1, "marks") < 0) goto fail;
        have_marks = 1;
        w.marks = marks_view.buf;
        w.n_marks = marks_view.len;
    }
    w.off[0] = views[0].buf;
    w.adj[0] = views[1].buf;
    w.stamps[0] = views[2].buf;
    w.off[1] = views[3].buf;
    w.adj[1] = views[4].buf;
    w.stamps[1] = views[5].buf;
    w.far = views[6].buf;
    w.near = views[7].buf;
    w.ts = views[8].buf;
    w.vlo = views[9].buf;
    w.vhi = views[10].buf;
    w.token = views[11].buf;
    w.srccol = views[12].buf;
    w.tx = views[13].buf;
    w.kind = views[14].buf;
    w.kind_rank = views[15].buf;
    w.tokdec = views[16].buf;
    w.min_lo = views[17].buf;
    w.min_hi = views[18].buf;
    w.unit_lo = views[19].buf;
    w.unit_hi = views[20].buf;
    w.unit_has = views[21].buf;
    w.n_nodes = views[0].len / 8 - 1;
    w.n_edges = views[8].len / 8;
    w.n_tokens = views[16].len / 4 - 1;
    w.n_kinds = views[15].len / 4;
    const int32_t *roots = roots_view.buf;
    Py_ssize_t n_roots = roots_view.len / 4;
    int bad = w.n_nodes < 0 || views[3].len != views[0].len || views[1].len / 4 != views[2].len / 8 ||
              views[4].len / 4 != views[5].len / 8;
    for (int c = 6; c <= 14 && !bad; c++)
        if (views[c].len / sizes[c] != w.n_edges) bad = 1;
    for (int c = 17; c <= 21 && !bad; c++)
        if (views[c].len / sizes[c] != w.n_tokens + 1) bad = 1;
    for (Py_ssize_t i = 0; i < n_roots && !bad; i++)
        if (roots[i] < 0 || roots[i] >= w.n_nodes) bad = 1;
    if (bad || w.n_tokens < 0 || PyList_GET_SIZE(names) < w.n_nodes || n_roots < 1 || fanout < 1 || max_nodes < 1 ||
        scan_limit < 1 || w.hops < 1 || w.hops > MAX_HOPS_V || !w.rule.share_den || !w.rule.crumb_den ||
        !w.rule.pure_den || !w.rule.dilute_den) {
        PyErr_SetString(PyExc_ValueError, "value_walk: inconsistent columns or parameters");
        goto fail;
    }
    w.names = names;
    w.since = opt_time(since_obj);
    w.until = opt_time(until_obj);
    if (PyErr_Occurred()) goto fail;
    w.fanout = fanout;
    w.max_nodes = max_nodes;
    w.scan_limit = scan_limit;
    w.hub_degree = hub_degree;
    w.label_cb = label_cb;
    w.price_cb = price_cb;
    w.rank_cb = rank_cb;
    w.nodes = (Vec)VEC(VNode);
    w.labelled = (Vec)VEC(int32_t);
    w.followed = (Vec)VEC(int32_t);
    w.followed_hop = (Vec)VEC(int32_t);
    w.carried = (Vec)VEC(u128);
    w.why = (Vec)VEC(uint8_t);
    w.passes = (Vec)VEC(int32_t);
    w.cuts = (Vec)VEC(VCut);
    w.totals = (Vec)VEC(TotRec);
    w.dust = (Vec)VEC(DustRec);
    w.prices = (Vec)VEC(PriceRec);
    for (int h = 0; h <= MAX_HOPS_V; h++) w.pending[h] = (Vec)VEC(int32_t);
    for (int k = 0; k < MAX_SLOTS; k++) {
        w.slots[k].lots = (Vec)VEC(Lot);
        w.slots[k].receipts = (Vec)VEC(Receipt);
    }
    w.sends = (Vec)VEC(int32_t);
    w.receives = (Vec)VEC(int32_t);
    w.events = (Vec)VEC(Ev);
    w.steps = (Vec)VEC(VStep);
    w.swap_tx = (Vec)VEC(int32_t);
    w.swap_share = (Vec){NULL, 0, 0, 2 * sizeof(u128)};
    w.order = (Vec)VEC(int32_t);
    w.order_tmp = (Vec)VEC(int32_t);
    w.party_sums = (Vec)VEC(VParty);
    w.chosen = (Vec)VEC(int32_t);
    w.small = (Vec){NULL, 0, 0, 2 * sizeof(int64_t)};
    w.unfloored = calloc((size_t)w.n_tokens + 1, 1);
    w.no_price = calloc((size_t)w.n_tokens + 1, 1);
    w.never = calloc((size_t)w.n_tokens + 1, 1);
    if (!w.unfloored || !w.no_price || !w.never || map_init(&w.index, 1024) < 0 || map_init(&w.seen, 1024) < 0 ||
        map_init(&w.cut_at, 256) < 0 || map_init(&w.price_at, 256) < 0 || map_init(&w.mark, 256) < 0 ||
        map_init(&w.parties, 256) < 0) {
        PyErr_NoMemory();
        goto fail;
    }
    if (vw_run(&w, roots, n_roots) < 0) goto fail;
    if (w.unsupported) {
        out = Py_NewRef(Py_None);
        goto fail;
    }
    {
        Py_ssize_t n = w.nodes.len;
        /* parents: of the followed edges one hop further into each node, the largest by value (weight_of), the
           earliest among equals; equal in time too: left to Python (the result's edge order decides) */
        double *best = malloc(sizeof(double) * (size_t)(n ? n : 1));
        int64_t *best_ts = malloc(sizeof(int64_t) * (size_t)(n ? n : 1));
        Vec node = VEC(int32_t), hop = VEC(int32_t), arrived = VEC(int64_t), degree = VEC(int64_t),
            stop = VEC(int8_t), parent = VEC(int32_t), fol = VEC(int32_t), fol_hop = VEC(int32_t),
            c_lo = VEC(uint64_t), c_hi = VEC(uint64_t), carrying = VEC(uint8_t), why = VEC(uint8_t),
            passes = VEC(int32_t);
        int ok = best && best_ts;
        for (Py_ssize_t i = 0; i < n && ok; i++) {
            int32_t none = -1;
            best[i] = -1.0;
            best_ts[i] = 0;
            ok = vec_push(&parent, &none) == 0;
        }
        for (Py_ssize_t k = 0; k < w.followed.len && ok; k++) {
            int32_t e = AT(w.followed, int32_t, k), h = AT(w.followed_hop, int32_t, k);
            int32_t fi = map_get(&w.index, w.far[e], -1), ni = map_get(&w.index, w.near[e], -1);
            if (fi < 0 || ni < 0 || AT(w.nodes, VNode, fi).hop != h || AT(w.nodes, VNode, ni).hop != h - 1) continue;
            int dec = w.tokdec[w.token[e] + 1];
            double size = div_round(((u128)w.vhi[e] << 64) | w.vlo[e], POW10[dec]);
            int32_t *p = &AT(parent, int32_t, fi);
            if (size > best[fi] || (size == best[fi] && w.ts[e] < best_ts[fi])) {
                best[fi] = size;
                best_ts[fi] = w.ts[e];
                *p = e;
            } else if (size == best[fi] && w.ts[e] == best_ts[fi]) {
                *p = -2;
            }
        }
        free(best);
        free(best_ts);
        for (Py_ssize_t i = 0; i < n && ok; i++) {
            VNode *v = &AT(w.nodes, VNode, i);
            int8_t st = v->stop;
            ok = vec_push(&node, &v->node) == 0 && vec_push(&hop, &v->hop) == 0 && vec_push(&arrived, &v->arrived) == 0 &&
                 vec_push(&degree, &v->degree) == 0 && vec_push(&stop, &st) == 0;
        }
        /* the followed edges by hop (stable): the order `ancestors` reads */
        for (int32_t h = 1; h <= w.hops + 1 && ok; h++)
            for (Py_ssize_t k = 0; k < w.followed.len && ok; k++) {
                if (AT(w.followed_hop, int32_t, k) != h) continue;
                u128 c = AT(w.carried, u128, k);
                uint64_t lo = (uint64_t)c, hi = (uint64_t)(c >> 64);
                /* it carries traced value into its far end when that end is one hop further than its near end */
                int32_t e = AT(w.followed, int32_t, k);
                int32_t fi = map_get(&w.index, w.far[e], -1), ni = map_get(&w.index, w.near[e], -1);
                uint8_t flag = c && fi >= 0 && ni >= 0 && AT(w.nodes, VNode, fi).hop == h &&
                               AT(w.nodes, VNode, ni).hop == h - 1;
                ok = vec_push(&fol, &e) == 0 && vec_push(&fol_hop, &h) == 0 && vec_push(&c_lo, &lo) == 0 &&
                     vec_push(&c_hi, &hi) == 0 && vec_push(&carrying, &flag) == 0 &&
                     vec_push(&why, &AT(w.why, uint8_t, k)) == 0 && vec_push(&passes, &AT(w.passes, int32_t, k)) == 0;
            }
        PyObject *cuts = ok ? PyList_New(0) : NULL;
        for (Py_ssize_t i = 0; cuts && i < w.cuts.len; i++) {
            VCut *c = &AT(w.cuts, VCut, i);
            if (!c->live) continue;
            PyObject *item = Py_BuildValue("(iiiLL)", c->node, c->hop, c->reason, (long long)c->kept,
                                           (long long)c->dropped);
            if (!item || PyList_Append(cuts, item) < 0) Py_CLEAR(cuts);
            Py_XDECREF(item);
        }
        /* totals in the order first set (a dict's order in the Python walk) */
        PyObject *totals = cuts ? PyList_New(0) : NULL;
        for (Py_ssize_t t = 0; totals && t < w.totals.len; t++) {
            TotRec *rec = &AT(w.totals, TotRec, t);
            PyObject *pair = Py_BuildValue("(iO)", rec->node, rec->dict);
            if (!pair || PyList_Append(totals, pair) < 0) Py_CLEAR(totals);
            Py_XDECREF(pair);
        }
        PyObject *sources = totals ? PyList_New(0) : NULL;
        for (int s = 0; sources && s < 256; s++) {
            if (!w.sources[s]) continue;
            PyObject *id = PyLong_FromLong(s);
            if (!id || PyList_Append(sources, id) < 0) Py_CLEAR(sources);
            Py_XDECREF(id);
        }
        /* dust of each address's last expansion, summed per (token, day); day -1: no price */
        Py_ssize_t kept = 0;
        int64_t dust_count = 0, dust_priced = 0;
        for (Py_ssize_t i = 0; i < n; i++) {
            dust_count += AT(w.nodes, VNode, i).dust_count;
            dust_priced += AT(w.nodes, VNode, i).dust_priced;
        }
        for (Py_ssize_t i = 0; i < w.dust.len; i++) {
            DustRec *d = &AT(w.dust, DustRec, i);
            if (d->gen == vnode(&w, d->node)->dust_gen) AT(w.dust, DustRec, kept++) = *d;
        }
        qsort(w.dust.data, (size_t)kept, sizeof(DustRec), dust_cmp);
        PyObject *dust = sources ? PyList_New(0) : NULL;
        for (Py_ssize_t i = 0; dust && i < kept;) {
            DustRec *d = &AT(w.dust, DustRec, i);
            u128 sum = 0;
            Py_ssize_t j = i;
            int overflow = 0;
            for (; j < kept && AT(w.dust, DustRec, j).tid == d->tid && AT(w.dust, DustRec, j).day == d->day; j++)
                sum = sat_add(sum, AT(w.dust, DustRec, j).sum, &overflow);
            PyObject *item = Py_BuildValue("(iLN)", d->tid, (long long)d->day, u128_to_py(sum));
            if (!item || PyList_Append(dust, item) < 0) Py_CLEAR(dust);
            Py_XDECREF(item);
            i = j;
        }
        PyObject *unfloored = dust ? flags_of(w.unfloored, w.n_tokens + 1) : NULL;
        PyObject *no_price = unfloored ? flags_of(w.no_price, w.n_tokens + 1) : NULL;
        if (no_price && ok)
            out = Py_BuildValue("(NNNNNNNNNNNNNNNLLNNNNN)", bytes_of(&node), bytes_of(&hop), bytes_of(&arrived),
                                bytes_of(&degree), bytes_of(&stop), bytes_of(&parent), bytes_of(&fol),
                                bytes_of(&fol_hop), cuts, totals, sources,
                                w.marks ? bytes_of(&w.labelled) : Py_NewRef(Py_None), bytes_of(&c_lo),
                                bytes_of(&c_hi), dust, (long long)dust_count, (long long)dust_priced, unfloored,
                                no_price, bytes_of(&carrying), bytes_of(&why), bytes_of(&passes));
        else {
            Py_XDECREF(cuts);
            Py_XDECREF(totals);
            Py_XDECREF(sources);
            Py_XDECREF(dust);
            Py_XDECREF(unfloored);
            Py_XDECREF(no_price);
            if (!PyErr_Occurred()) PyErr_NoMemory();
        }
        free(node.data);
        free(hop.data);
        free(arrived.data);
        free(degree.data);
        free(stop.data);
        free(parent.data);
        free(fol.data);
        free(fol_hop.data);
        free(c_lo.data);
        free(c_hi.data);
        free(carrying.data);
        free(why.data);
        free(passes.data);
    }
fail:
    for (int i = 0; i < got; i++) PyBuffer_Release(&views[i]);
    if (have_roots) PyBuffer_Release(&roots_view);
    if (have_marks) PyBuffer_Release(&marks_view);
    for (Py_ssize_t i = 0; i < w.totals.len; i++) Py_XDECREF(AT(w.totals, TotRec, i).dict);
    Vec *vecs[] = {&w.nodes, &w.labelled, &w.followed, &w.followed_hop, &w.carried, &w.why, &w.passes, &w.cuts,
                   &w.totals, &w.dust,
                   &w.prices, &w.sends, &w.receives, &w.events, &w.steps, &w.swap_tx, &w.swap_share, &w.order,
                   &w.order_tmp, &w.party_sums, &w.chosen, &w.small};
    for (size_t i = 0; i < sizeof vecs / sizeof vecs[0]; i++) free(vecs[i]->data);
    for (int h = 0; h <= MAX_HOPS_V; h++) free(w.pending[h].data);
    for (int k = 0; k < MAX_SLOTS; k++) {
        free(w.slots[k].lots.data);
        free(w.slots[k].receipts.data);
    }
    free(w.unfloored);
    free(w.no_price);
    free(w.never);
    Map *maps[] = {&w.index, &w.seen, &w.cut_at, &w.price_at, &w.mark, &w.parties};
    for (size_t i = 0; i < sizeof maps / sizeof maps[0]; i++)
        if (maps[i]->keys || maps[i]->vals || maps[i]->gens) map_free(maps[i]);
    return out;
}

static PyMethodDef methods[] = {
    {"walk", walk, METH_VARARGS, walk_doc},
    {"ancestors", ancestors, METH_VARARGS, ancestors_doc},
    {"value_walk", value_walk, METH_VARARGS, value_walk_doc},
    {"weight", weight, METH_VARARGS, "weight(hi, lo, decimals): (hi << 64 | lo) / 10**decimals, correctly rounded"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_walk", "Compiled bounded trace walk.", -1, methods};

PyMODINIT_FUNC PyInit__walk(void) { return PyModule_Create(&module); }
