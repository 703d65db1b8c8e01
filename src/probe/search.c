// SPDX-License-Identifier: MIT
/*
 * Adaptive group testing for tgvm probe: which of n items does a workload
 * need? Items are plain indices; the driver maps them to CPU features and
 * runs the tests. See probe-int.h for the model and the guarantees.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "probe/probe-int.h"

enum item_state { IT_UNKNOWN, IT_LANE, IT_CLEARED, IT_FOUND };
enum test_kind { T_WHOLE, T_LEFT, T_MINUS };

struct lane {
	uint32_t *g; /* the group */
	size_t ng;
	bool known_bad; /* a failing test showed a needed item in g */
	int hint;       /* an item of g the failure pointed at, or -1 */
	bool busy;
	uint32_t test_id;
	enum test_kind kind;
	uint32_t *t; /* items of the pending test */
	size_t nt;
	uint32_t lid;     /* lane id, stable while lanes move in the array */
	uint32_t partner; /* split: the lane holding the other half of g, or 0 */
};

struct probe_search {
	size_t n;
	uint8_t *state;
	uint8_t *suspect;
	uint8_t *biased; /* tried alone as a suspect, or declared: not a sample of the density */
	size_t nbiased_found;
	/* Whole-group tests on unbiased items, by group size: the sample the
	 * density is estimated from. */
	uint32_t *npass, *nfail; /* indexed by size, 1..n */
	uint32_t *sizes;         /* the distinct sizes seen */
	size_t nsizes;
	uint32_t *u; /* unknown items, front first */
	size_t nu;
	uint32_t *cleared;
	size_t ncleared;
	uint32_t *found; /* sorted on request */
	size_t nfound;
	struct lane *lanes;
	size_t nlanes;
	unsigned tests;
	uint32_t next_lid;
};

struct probe_search *probe_search_new(size_t n)
{
	struct probe_search *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->n = n;
	s->state = calloc(n + 1, 1);
	s->suspect = calloc(n + 1, 1);
	s->biased = calloc(n + 1, 1);
	s->npass = calloc(n + 1, sizeof(uint32_t));
	s->nfail = calloc(n + 1, sizeof(uint32_t));
	s->sizes = calloc(n + 1, sizeof(uint32_t));
	s->u = calloc(n + 1, sizeof(uint32_t));
	s->cleared = calloc(n + 1, sizeof(uint32_t));
	s->found = calloc(n + 1, sizeof(uint32_t));
	/* Lanes hold disjoint non-empty groups: never more than n. */
	s->lanes = calloc(n + 1, sizeof(struct lane));
	if (!s->state || !s->suspect || !s->biased || !s->u || !s->cleared || !s->found ||
	    !s->lanes || !s->npass || !s->nfail || !s->sizes) {
		probe_search_free(s);
		return NULL;
	}
	for (size_t i = 0; i < n; i++)
		s->u[i] = (uint32_t)i;
	/* A fixed shuffle: needed items cluster in table order (avx, avx2, and
	 * their dependencies), which would fool the density estimate. */
	for (size_t i = n; i > 1; i--) {
		uint64_t x = (uint64_t)i * 0x9e3779b97f4a7c15ULL;
		size_t j;
		uint32_t t;

		x ^= x >> 29;
		x *= 0xbf58476d1ce4e5b9ULL;
		x ^= x >> 32;
		j = (size_t)(x % i);
		t = s->u[i - 1];
		s->u[i - 1] = s->u[j];
		s->u[j] = t;
	}
	s->nu = n;
	return s;
}

void probe_search_free(struct probe_search *s)
{
	if (!s)
		return;
	for (size_t i = 0; i < s->nlanes; i++) {
		free(s->lanes[i].g);
		free(s->lanes[i].t);
	}
	free(s->lanes);
	free(s->state);
	free(s->suspect);
	free(s->biased);
	free(s->npass);
	free(s->nfail);
	free(s->sizes);
	free(s->u);
	free(s->cleared);
	free(s->found);
	free(s);
}

/* Put @items back at the front of the unknown list. */
static void u_push_front(struct probe_search *s, const uint32_t *items, size_t n)
{
	memmove(s->u + n, s->u, s->nu * sizeof(uint32_t));
	memcpy(s->u, items, n * sizeof(uint32_t));
	s->nu += n;
	for (size_t i = 0; i < n; i++)
		s->state[items[i]] = IT_UNKNOWN;
}

void probe_search_suspect(struct probe_search *s, uint32_t item)
{
	size_t i;

	if (item >= s->n || s->state[item] != IT_UNKNOWN || s->suspect[item])
		return;
	for (i = 0; i < s->nu && s->u[i] != item; i++)
		;
	if (i == s->nu)
		return;
	memmove(s->u + i, s->u + i + 1, (s->nu - i - 1) * sizeof(uint32_t));
	s->nu--;
	s->suspect[item] = 1;
	u_push_front(s, &item, 1);
}

void probe_search_declare(struct probe_search *s, uint32_t item)
{
	size_t i;

	if (item >= s->n || s->state[item] != IT_UNKNOWN)
		return;
	for (i = 0; i < s->nu && s->u[i] != item; i++)
		;
	if (i == s->nu)
		return;
	memmove(s->u + i, s->u + i + 1, (s->nu - i - 1) * sizeof(uint32_t));
	s->nu--;
	s->suspect[item] = 0;
	s->state[item] = IT_FOUND;
	s->found[s->nfound++] = item;
	s->biased[item] = 1;
	s->nbiased_found++;
}

static void clear_items(struct probe_search *s, const uint32_t *items, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		s->state[items[i]] = IT_CLEARED;
		s->cleared[s->ncleared++] = items[i];
	}
}

static void lane_drop(struct probe_search *s, size_t li)
{
	free(s->lanes[li].g);
	free(s->lanes[li].t);
	s->lanes[li] = s->lanes[--s->nlanes];
	memset(&s->lanes[s->nlanes], 0, sizeof(struct lane));
}

/*
 * Log-likelihood of q, the chance that an item is not needed, given the
 * whole-group tests seen (a group of m passes with chance q^m) and a prior
 * worth one passing single item, so that failures alone do not make every
 * item look needed.
 */
static double density_loglik(const struct probe_search *s, double q)
{
	double l = log(q);

	for (size_t i = 0; i < s->nsizes; i++) {
		uint32_t m = s->sizes[i];

		l += (double)s->npass[m] * (double)m * log(q) +
		     (double)s->nfail[m] * log1p(-pow(q, (double)m));
	}
	return l;
}

/*
 * How many unknown items to test as one group: Hwang's 2^a with
 * a = floor(log2((r - d + 1) / d)) for d needed items among r, d estimated
 * as r times the maximum-likelihood density of the whole-group tests so far
 * (failing groups count for "at least one", not for their halving, which
 * would overstate the density). Nothing found yet: everything left at once.
 */
static size_t group_size(const struct probe_search *s)
{
	double r = (double)s->nu, d, a, lo = 1e-6, hi = 1 - 1e-9;
	size_t size;

	if (s->nfound - s->nbiased_found == 0)
		return s->nu;
	/* The log-likelihood is concave in q: ternary search. */
	for (int it = 0; it < 40; it++) {
		double m1 = lo + (hi - lo) / 3, m2 = hi - (hi - lo) / 3;

		if (density_loglik(s, m1) < density_loglik(s, m2))
			lo = m1;
		else
			hi = m2;
	}
	d = r * (1 - (lo + hi) / 2);
	if (r <= 2 * d - 2)
		return 1;
	a = floor(log2((r - d + 1) / d));
	if (a < 0)
		a = 0;
	if (a >= 30)
		return s->nu;
	size = (size_t)1 << (int)a;
	return size < s->nu ? size : s->nu;
}

/* Choose the lane's next test; false when it has none (it is then resolved). */
static bool lane_plan(struct lane *l)
{
	l->nt = 0;
	if (!l->known_bad) {
		l->kind = T_WHOLE;
		memcpy(l->t, l->g, l->ng * sizeof(uint32_t));
		l->nt = l->ng;
	} else if (l->ng < 2) {
		return false;
	} else if (l->hint >= 0) {
		l->kind = T_MINUS;
		for (size_t i = 0; i < l->ng; i++)
			if ((int)l->g[i] != l->hint)
				l->t[l->nt++] = l->g[i];
	} else {
		l->kind = T_LEFT;
		l->nt = l->ng / 2;
		memcpy(l->t, l->g, l->nt * sizeof(uint32_t));
	}
	return true;
}

static bool in_list(const uint32_t *v, size_t n, int x)
{
	for (size_t i = 0; i < n; i++)
		if ((int)v[i] == x)
			return true;
	return false;
}

static void fill_test(struct probe_search *s, struct lane *l, struct probe_test *ret)
{
	l->busy = true;
	l->test_id = s->tests++;
	ret->id = l->test_id;
	ret->items = l->t;
	ret->n = l->nt;
	ret->cleared = s->cleared;
	ret->ncleared = s->ncleared;
}

static struct lane *lane_by_id(struct probe_search *s, uint32_t lid, size_t *ret_index)
{
	for (size_t i = 0; i < s->nlanes; i++)
		if (s->lanes[i].lid == lid) {
			*ret_index = i;
			return &s->lanes[i];
		}
	return NULL;
}

/*
 * Nothing left to carve and a test slot free: a lane halving a group while
 * it waits for its left half gives the right half a lane and a test of its
 * own. If the left half turns out clean, the right one was known to hold a
 * needed item and that test is spent; otherwise it answers now what would
 * have been asked later. Fewer rounds of waiting, about as many runs.
 */
static int split_lane(struct probe_search *s, struct probe_test *ret)
{
	/* One split at a time: with many slots, speculation would cost more
	 * runs than it saves waiting. */
	for (size_t i = 0; i < s->nlanes; i++)
		if (s->lanes[i].partner)
			return 0;
	for (size_t i = 0; i < s->nlanes; i++) {
		struct lane *a = &s->lanes[i], *b;

		if (!a->busy || a->kind != T_LEFT || a->partner || a->ng <= a->nt)
			continue;
		b = &s->lanes[s->nlanes];
		memset(b, 0, sizeof(*b));
		b->g = malloc((a->ng - a->nt) * sizeof(uint32_t));
		b->t = malloc((a->ng - a->nt) * sizeof(uint32_t));
		if (!b->g || !b->t) {
			free(b->g);
			free(b->t);
			memset(b, 0, sizeof(*b));
			return 0;
		}
		s->nlanes++;
		b->lid = ++s->next_lid;
		b->ng = a->ng - a->nt;
		memcpy(b->g, a->g + a->nt, b->ng * sizeof(uint32_t));
		b->hint = -1; /* not known bad yet: a hint waits for its own failure */
		a->ng = a->nt;
		a->partner = b->lid;
		lane_plan(b);
		fill_test(s, b, ret);
		return 1;
	}
	return 0;
}

int probe_search_next(struct probe_search *s, struct probe_test *ret)
{
	struct lane *l;
	size_t take;

	/* A lane waiting for its next test (cannot happen after a result: those
	 * are planned at once, but keep the loop honest). */
	for (size_t i = 0; i < s->nlanes; i++) {
		l = &s->lanes[i];
		if (!l->busy && l->nt > 0) {
			fill_test(s, l, ret);
			return 1;
		}
	}
	if (s->nu == 0)
		return split_lane(s, ret);
	take = s->suspect[s->u[0]] ? 1 : group_size(s);
	if (s->suspect[s->u[0]])
		s->biased[s->u[0]] = 1;
	l = &s->lanes[s->nlanes];
	memset(l, 0, sizeof(*l));
	l->g = malloc(take * sizeof(uint32_t));
	l->t = malloc(take * sizeof(uint32_t));
	if (!l->g || !l->t) {
		free(l->g);
		free(l->t);
		memset(l, 0, sizeof(*l));
		return 0;
	}
	s->nlanes++;
	l->lid = ++s->next_lid;
	/* Suspects go alone; a group takes no suspect. */
	for (size_t i = 0; i < s->nu && l->ng < take;) {
		uint32_t it = s->u[i];

		if (l->ng > 0 && s->suspect[it]) {
			i++;
			continue;
		}
		l->g[l->ng++] = it;
		s->state[it] = IT_LANE;
		s->suspect[it] = 0;
		memmove(s->u + i, s->u + i + 1, (s->nu - i - 1) * sizeof(uint32_t));
		s->nu--;
		if (take == 1)
			break;
	}
	l->hint = -1;
	lane_plan(l);
	fill_test(s, l, ret);
	return 1;
}

/* After a result: drop an emptied lane, record an isolated needed item, or plan the next test. */
static void lane_settle(struct probe_search *s, size_t li)
{
	struct lane *l = &s->lanes[li];

	if (l->ng == 0) {
		lane_drop(s, li);
		return;
	}
	if (l->known_bad && l->ng == 1) {
		s->state[l->g[0]] = IT_FOUND;
		s->found[s->nfound++] = l->g[0];
		s->nbiased_found += s->biased[l->g[0]];
		lane_drop(s, li);
		return;
	}
	lane_plan(l);
}

void probe_search_result(struct probe_search *s, uint32_t id, bool pass, int hint)
{
	struct lane *l = NULL;
	size_t li;

	for (li = 0; li < s->nlanes; li++)
		if (s->lanes[li].busy && s->lanes[li].test_id == id) {
			l = &s->lanes[li];
			break;
		}
	if (!l)
		return;
	l->busy = false;
	if (hint >= 0 && !in_list(l->t, l->nt, hint))
		hint = -1;
	if (l->kind == T_WHOLE) {
		bool sample = true;

		for (size_t i = 0; i < l->ng && sample; i++)
			sample = !s->biased[l->g[i]];
		if (sample) {
			if (s->npass[l->ng] == 0 && s->nfail[l->ng] == 0)
				s->sizes[s->nsizes++] = (uint32_t)l->ng;
			if (pass)
				s->npass[l->ng]++;
			else
				s->nfail[l->ng]++;
		}
	}
	switch (l->kind) {
	case T_WHOLE:
		if (pass) {
			clear_items(s, l->g, l->ng);
			l->ng = 0;
		} else {
			l->known_bad = true;
			l->hint = hint;
		}
		break;
	case T_MINUS:
		if (pass) {
			/* Everything but the hint is clean: the hint is needed. */
			clear_items(s, l->t, l->nt);
			l->g[0] = (uint32_t)l->hint;
			l->ng = 1;
		} else {
			/* The rest holds a needed item too; the hint waits its turn alone. */
			uint32_t h = (uint32_t)l->hint;

			memcpy(l->g, l->t, l->nt * sizeof(uint32_t));
			l->ng = l->nt;
			l->hint = hint;
			s->suspect[h] = 1;
			u_push_front(s, &h, 1);
		}
		break;
	case T_LEFT: {
		size_t m = l->nt;

		if (l->partner) {
			/* The right half has its own lane (split_lane). */
			uint32_t partner = l->partner;
			size_t bi;
			struct lane *b;

			l->partner = 0;
			if (!pass) {
				l->known_bad = true;
				l->hint = hint;
				break;
			}
			clear_items(s, l->g, l->ng);
			l->ng = 0;
			lane_drop(s, li);
			b = lane_by_id(s, partner, &bi);
			if (b && !b->known_bad) {
				b->known_bad = true;
				if (!b->busy)
					lane_settle(s, bi);
			}
			return;
		}
		if (pass) {
			clear_items(s, l->g, m);
			memmove(l->g, l->g + m, (l->ng - m) * sizeof(uint32_t));
			l->ng -= m;
			if (!in_list(l->g, l->ng, l->hint))
				l->hint = -1;
		} else {
			u_push_front(s, l->g + m, l->ng - m);
			l->ng = m;
			l->hint = hint;
		}
		break;
	}
	}
	lane_settle(s, li);
}

bool probe_search_done(const struct probe_search *s)
{
	return s->nu == 0 && s->nlanes == 0;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

size_t probe_search_found(const struct probe_search *s, const uint32_t **ret)
{
	if (s->nfound > 1)
		qsort(s->found, s->nfound, sizeof(uint32_t), cmp_u32);
	*ret = s->found;
	return s->nfound;
}

unsigned probe_search_tests(const struct probe_search *s)
{
	return s->tests;
}
