// SPDX-License-Identifier: MIT
/*
 * The scan driver: walks each input through the source interface, analyses
 * its files on worker threads (one file per task, files mapped, not read;
 * hard links analysed once, under their first name), links programs to the
 * libraries the loader would give them, and builds the whole report: totals,
 * per-program sets, errors and evidence.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "scan/scan-int.h"
#include "scan/source.h"

static const char *const class_names[TGVM_SCAN_CLASS__MAX] = {
    [TGVM_SCAN_REQUIRED] = "required",
    [TGVM_SCAN_GUARDED] = "guarded",
    [TGVM_SCAN_UNKNOWN] = "unknown",
};

const char *tgvm_scan_class_to_string(enum tgvm_scan_class c)
{
	return (unsigned)c < TGVM_SCAN_CLASS__MAX ? class_names[c] : "?";
}

struct entry {
	char *path;
	uint64_t size;
	struct scan_fs_id id;
	size_t same; /* the earlier name of the same file analysed for it, or SIZE_MAX */
};

struct walk {
	struct entry *v;
	size_t n, cap;
	uint64_t dev, ino; /* of the input itself, 0 unknown */
	struct tgvm_scan_report *rep;
};

static int add_error(struct tgvm_scan_report *rep, const char *path, const char *msg)
{
	struct scan_error *nv = realloc(rep->errors, (rep->nerrors + 1) * sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	rep->errors = nv;
	nv[rep->nerrors].path = strdup(path);
	nv[rep->nerrors].msg = strdup(msg);
	if (!nv[rep->nerrors].path || !nv[rep->nerrors].msg) {
		free(nv[rep->nerrors].path);
		free(nv[rep->nerrors].msg);
		return -ENOMEM;
	}
	rep->nerrors++;
	return 0;
}

static int walk_cb(struct scan_fs *fs, const char *path, uint64_t size, const struct scan_fs_id *id,
                   void *ud)
{
	struct walk *w = ud;

	(void)fs;
	if (w->n == w->cap) {
		size_t nc = w->cap ? w->cap * 2 : 256;
		struct entry *nv = realloc(w->v, nc * sizeof(*nv));

		if (!nv)
			return -ENOMEM;
		w->v = nv;
		w->cap = nc;
	}
	w->v[w->n].path = strdup(path);
	if (!w->v[w->n].path)
		return -ENOMEM;
	w->v[w->n].id = *id;
	w->v[w->n].same = SIZE_MAX;
	w->v[w->n++].size = size;
	return 0;
}

/* Sorting names by identity; the analysis also reads the hwcaps level from
 * the name, so names at different levels stay apart. */
struct ident {
	uint64_t dev, ino;
	int hwcaps;
	size_t i;
};

static int cmp_ident(const void *x, const void *y)
{
	const struct ident *a = x, *b = y;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	if (a->hwcaps != b->hwcaps)
		return a->hwcaps - b->hwcaps;
	return a->i < b->i ? -1 : a->i > b->i;
}

/*
 * Point every later name of a file at its first name (in walk order), so
 * the file is read and analysed once. O(n log n) in names; -ENOMEM.
 */
static int walk_link_names(struct walk *w)
{
	struct ident *v;
	size_t n = 0;

	for (size_t i = 0; i < w->n; i++)
		n += w->v[i].id.ino != 0;
	if (n < 2)
		return 0;
	v = malloc(n * sizeof(*v));
	if (!v)
		return -ENOMEM;
	n = 0;
	for (size_t i = 0; i < w->n; i++)
		if (w->v[i].id.ino)
			v[n++] = (struct ident){w->v[i].id.dev, w->v[i].id.ino,
			                        scan_hwcaps_level_of(w->v[i].path), i};
	qsort(v, n, sizeof(*v), cmp_ident);
	for (size_t k = 1; k < n; k++)
		if (v[k].dev == v[k - 1].dev && v[k].ino == v[k - 1].ino &&
		    v[k].hwcaps == v[k - 1].hwcaps) {
			size_t first = v[k - 1].i;

			if (w->v[first].same != SIZE_MAX)
				first = w->v[first].same;
			w->v[v[k].i].same = first;
		}
	free(v);
	return 0;
}

static void walk_err(const char *path, const struct tgvm_error *err, void *ud)
{
	struct walk *w = ud;

	w->rep->totals.errors++;
	add_error(w->rep, path, err->msg);
}

struct job {
	struct scan_fs *fs;
	bool lock_reads;
	pthread_mutex_t lock;
	struct entry *ents;
	struct scan_result *res; /* parallel to ents */
	size_t *order;           /* the ents to analyse (first names), largest first */
	size_t n, nwork;         /* ents; ents to analyse */
	atomic_size_t next;
	atomic_size_t done;
	atomic_uint_fast64_t bytes_done;
	pthread_mutex_t wait_lock; /* with done_cv: a worker finished a file */
	pthread_cond_t done_cv;
};

static void analyse_entry(struct job *j, size_t i)
{
	struct scan_result *res = &j->res[i];
	struct scan_blob blob = {0};
	struct tgvm_error err = {0};
	int r;

	res->path = strdup(j->ents[i].path);
	res->size = j->ents[i].size;
	if (j->ents[i].size < 64 || j->ents[i].size > SCAN_FILE_MAX) {
		res->status = -ENOEXEC; /* too small to be ELF; too large counts as skipped */
		return;
	}
	if (j->lock_reads)
		pthread_mutex_lock(&j->lock);
	r = scan_fs_read(j->fs, j->ents[i].path, &blob, &err);
	if (j->lock_reads)
		pthread_mutex_unlock(&j->lock);
	if (r < 0) {
		res->status = r;
		res->error = strdup(err.msg[0] ? err.msg : strerror(-r));
		return;
	}
	if (blob.size < 4 || memcmp(blob.data, "\177ELF", 4))
		res->status = -ENOEXEC;
	else
		scan_analyse(j->ents[i].path, blob.data, blob.size, res);
	if (j->lock_reads)
		pthread_mutex_lock(&j->lock);
	scan_blob_release(&blob);
	if (j->lock_reads)
		pthread_mutex_unlock(&j->lock);
}

static void *worker(void *arg)
{
	struct job *j = arg;

	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);

		if (i >= j->nwork)
			break;
		if (j->order)
			i = j->order[i];
		analyse_entry(j, i);
		atomic_fetch_add(&j->bytes_done, j->ents[i].size);
		pthread_mutex_lock(&j->wait_lock);
		atomic_fetch_add(&j->done, 1);
		pthread_cond_signal(&j->done_cv);
		pthread_mutex_unlock(&j->wait_lock);
	}
	return NULL;
}

static const struct entry *order_ents; /* for cmp_size; set under order_lock */
static pthread_mutex_t order_lock = PTHREAD_MUTEX_INITIALIZER;

static int cmp_size(const void *x, const void *y)
{
	uint64_t a = order_ents[*(const size_t *)x].size, b = order_ents[*(const size_t *)y].size;

	return a > b ? -1 : a < b;
}

static unsigned pick_jobs(const struct tgvm_scan_options *o)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	if (o && o->jobs)
		return TGVM_MIN(o->jobs, 256u);
	return n > 0 ? (unsigned)TGVM_MIN(n, 64) : 1;
}

static int run_jobs(struct job *j, const struct tgvm_scan_options *o, uint64_t files_before,
                    uint64_t files_total, uint64_t bytes_total)
{
	unsigned nt = pick_jobs(o);
	pthread_t *th = calloc(nt, sizeof(*th));
	unsigned started = 0;

	if (!th)
		return -ENOMEM;
	/* every file once (later names of a hard-linked file are copied after),
	 * largest first: a big one picked up last would leave the other threads
	 * idle at the end */
	j->order = malloc((j->n ? j->n : 1) * sizeof(*j->order));
	if (!j->order) {
		free(th);
		return -ENOMEM;
	}
	j->nwork = 0;
	for (size_t i = 0; i < j->n; i++)
		if (j->ents[i].same == SIZE_MAX)
			j->order[j->nwork++] = i;
	if (nt > 1 && j->nwork > 1) {
		pthread_mutex_lock(&order_lock);
		order_ents = j->ents;
		qsort(j->order, j->nwork, sizeof(*j->order), cmp_size);
		order_ents = NULL;
		pthread_mutex_unlock(&order_lock);
	}
	pthread_mutex_init(&j->wait_lock, NULL);
	pthread_cond_init(&j->done_cv, NULL);
	for (; started < nt && started < j->nwork; started++)
		if (pthread_create(&th[started], NULL, worker, j))
			break;
	if (!started)
		worker(j);
	/* wait on the workers, not a clock: woken as each file is done, the
	 * progress shown at most every 100 ms */
	pthread_mutex_lock(&j->wait_lock);
	for (bool show = true; atomic_load(&j->done) < j->nwork;) {
		struct timespec ts;

		if (!o || !o->progress) {
			pthread_cond_wait(&j->done_cv, &j->wait_lock);
			continue;
		}
		if (show) {
			struct tgvm_scan_progress p = {files_before + atomic_load(&j->done),
			                               files_total, atomic_load(&j->bytes_done),
			                               bytes_total, NULL};

			pthread_mutex_unlock(&j->wait_lock);
			o->progress(&p, o->progress_ud);
			pthread_mutex_lock(&j->wait_lock);
			if (atomic_load(&j->done) >= j->nwork)
				break;
		}
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 100 * 1000 * 1000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		show = pthread_cond_timedwait(&j->done_cv, &j->wait_lock, &ts) == ETIMEDOUT;
	}
	pthread_mutex_unlock(&j->wait_lock);
	for (unsigned t = 0; t < started; t++)
		pthread_join(th[t], NULL);
	pthread_cond_destroy(&j->done_cv);
	pthread_mutex_destroy(&j->wait_lock);
	free(th);
	free(j->order);
	j->order = NULL;
	/* the other names of each file analysed: the same result */
	for (size_t i = 0; i < j->n; i++) {
		size_t f = j->ents[i].same;

		if (f == SIZE_MAX)
			continue;
		if (scan_result_copy(&j->res[i], &j->res[f], j->ents[i].path) < 0)
			return -ENOMEM;
		j->res[i].hardlink = true;
	}
	return 0;
}

static int push_result(struct tgvm_scan_report *rep, struct scan_result *res, size_t input)
{
	if (rep->nresults == rep->cap_results) {
		size_t nc = rep->cap_results ? rep->cap_results * 2 : 256;
		struct scan_result *nv = realloc(rep->results, nc * sizeof(*nv));
		size_t *ni;

		if (!nv)
			return -ENOMEM;
		rep->results = nv;
		ni = realloc(rep->result_input, nc * sizeof(*ni));
		if (!ni)
			return -ENOMEM;
		rep->result_input = ni;
		rep->cap_results = nc;
	}
	rep->results[rep->nresults] = *res;
	rep->result_input[rep->nresults++] = input;
	memset(res, 0, sizeof(*res));
	return 0;
}

/* The walked results of one input by path, so that linking a program to its
 * libraries finds each in O(log n), not by a pass over every file. */
struct result_index {
	const struct tgvm_scan_report *rep;
	size_t *v; /* indices into rep->results, sorted by path */
	size_t n;
	size_t end; /* results from here on were added after the index was built */
};

static int cmp_result_path(const void *x, const void *y, void *ud)
{
	const struct tgvm_scan_report *rep = ud;

	return strcmp(rep->results[*(const size_t *)x].path, rep->results[*(const size_t *)y].path);
}

/* Index results [@first, rep->nresults). -ENOMEM. */
static int result_index_build(struct result_index *ix, const struct tgvm_scan_report *rep,
                              size_t first)
{
	ix->rep = rep;
	ix->n = rep->nresults - first;
	ix->end = rep->nresults;
	ix->v = malloc((ix->n ? ix->n : 1) * sizeof(*ix->v));
	if (!ix->v)
		return -ENOMEM;
	for (size_t i = 0; i < ix->n; i++)
		ix->v[i] = first + i;
	if (ix->n > 1)
		qsort_r(ix->v, ix->n, sizeof(*ix->v), cmp_result_path, (void *)rep);
	return 0;
}

/* Index of the indexed result named @path, or SIZE_MAX. */
static size_t result_index_find(const struct result_index *ix, const char *path)
{
	size_t lo = 0, hi = ix->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(ix->rep->results[ix->v[mid]].path, path);

		if (!c)
			return ix->v[mid];
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* The result for @path of input @input, analysing it from @fs when it was not walked. */
static struct scan_result *result_for(struct tgvm_scan_report *rep, size_t input,
                                      const struct result_index *ix, struct scan_fs *fs,
                                      const char *path)
{
	struct scan_result res = {0};
	struct job j = {.fs = fs, .n = 1, .nwork = 1};
	struct entry e = {(char *)path, 0, {0, 0}, SIZE_MAX};
	struct scan_blob blob = {0};
	size_t at = result_index_find(ix, path);

	if (at != SIZE_MAX)
		return &rep->results[at];
	for (size_t i = ix->end; i < rep->nresults; i++)
		if (rep->result_input[i] == input && !strcmp(rep->results[i].path, path))
			return &rep->results[i];
	if (scan_fs_read(fs, path, &blob, NULL) < 0)
		return NULL;
	e.size = blob.size;
	scan_blob_release(&blob);
	j.ents = &e;
	j.res = &res;
	analyse_entry(&j, 0);
	if (push_result(rep, &res, input) < 0) {
		scan_result_free(&res);
		return NULL;
	}
	return &rep->results[rep->nresults - 1];
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int push_imports(const char ***v, size_t *n, size_t *cap, const struct scan_result *res)
{
	for (size_t i = 0; i < res->imports.n; i++) {
		if (*n == *cap) {
			size_t nc = *cap ? *cap * 2 : 256;
			const char **nv = realloc(*v, nc * sizeof(*nv));

			if (!nv)
				return -ENOMEM;
			*v = nv;
			*cap = nc;
		}
		(*v)[(*n)++] = res->imports.v[i];
	}
	return 0;
}

/* What library @lib makes a program need, given the names the program's
 * closure imports (sorted): trivial uses, and the required uses reachable
 * from an entry that is always taken or from a function it imports. */
static void lib_required(struct tgvm_featureset *req, const struct scan_result *lib,
                         const char **imports, size_t nimp)
{
	TGVM_FEATURESET_FOREACH(f, &lib->req)
	if (scan_feature_trivial(f))
		tgvm_featureset_add(req, f);
	for (size_t i = 0; i < lib->nconds; i++) {
		const struct scan_cond *c = &lib->conds[i];
		bool hit = c->always;

		for (uint32_t k = 0; !hit && k < c->n_names; k++) {
			const char *name = lib->cond_names.v[c->first_name + k];

			hit = bsearch(&name, imports, nimp, sizeof(*imports), cmp_str) != NULL;
		}
		if (hit)
			tgvm_featureset_union(req, &c->features);
	}
}

/* Link result @i (when it is a program) to the libraries the loader would
 * give it, adding its entry to rep->progs. -ENOMEM. */
static int link_program(struct tgvm_scan_report *rep, size_t input, size_t i,
                        const struct result_index *ix, struct scan_fs *fs,
                        const struct tgvm_scan_options *o)
{
	struct tgvm_scan_program *p, *np;
	struct tgvm_strv *nl, *nm;
	struct scan_result *pr = &rep->results[i];
	char *ppath;
	int r;

	if (pr->status || !pr->program)
		return 0;
	np = realloc(rep->progs, (rep->nprogs + 1) * sizeof(*np));
	if (!np)
		return -ENOMEM;
	rep->progs = np;
	nl = realloc(rep->prog_libs, (rep->nprogs + 1) * sizeof(*nl));
	if (!nl)
		return -ENOMEM;
	rep->prog_libs = nl;
	nm = realloc(rep->prog_missing, (rep->nprogs + 1) * sizeof(*nm));
	if (!nm)
		return -ENOMEM;
	rep->prog_missing = nm;
	p = &rep->progs[rep->nprogs];
	memset(p, 0, sizeof(*p));
	tgvm_strv_init(&nl[rep->nprogs]);
	tgvm_strv_init(&nm[rep->nprogs]);
	rep->nprogs++;
	ppath = rep->results[i].path;
	p->input = rep->inputs.v[input];
	p->path = ppath;
	p->required = rep->results[i].req;
	p->guarded = rep->results[i].grd;
	if (!pr->is_static && pr->needed.n) {
		struct tgvm_error err = {0};

		r = scan_fs_resolve_needed(fs, ppath, o ? o->hwcaps_level : 0, &nl[rep->nprogs - 1],
		                           &nm[rep->nprogs - 1], &err);
		if (r < 0 && add_error(rep, ppath, err.msg[0] ? err.msg : strerror(-r)) < 0)
			return -ENOMEM;
	}
	{
		size_t nlib = nl[rep->nprogs - 1].n, nimp = 0, capimp = 0;
		size_t *idx = calloc(nlib ? nlib : 1, sizeof(*idx));
		const char **imp = NULL;

		if (!idx)
			return -ENOMEM;
		/* analyse first: result_for() may move the results */
		for (size_t k = 0; k < nlib; k++) {
			struct scan_result *lr =
			    result_for(rep, input, ix, fs, nl[rep->nprogs - 1].v[k]);

			idx[k] = lr ? (size_t)(lr - rep->results) : SIZE_MAX;
		}
		r = push_imports(&imp, &nimp, &capimp, &rep->results[i]);
		for (size_t k = 0; k < nlib && r == 0; k++)
			if (idx[k] != SIZE_MAX)
				r = push_imports(&imp, &nimp, &capimp, &rep->results[idx[k]]);
		if (r < 0) {
			free(idx);
			free(imp);
			return r;
		}
		if (nimp)
			scan_sort(imp, nimp, sizeof(*imp), cmp_str);
		p = &rep->progs[rep->nprogs - 1];
		for (size_t k = 0; k < nlib; k++) {
			struct scan_result *lr = idx[k] != SIZE_MAX ? &rep->results[idx[k]] : NULL;

			if (!lr || lr->status)
				continue;
			lr->linked = true;
			lib_required(&p->required, lr, imp, nimp);
			tgvm_featureset_union(&p->guarded, &lr->grd);
		}
		free(idx);
		free(imp);
	}
	p = &rep->progs[rep->nprogs - 1];
	tgvm_featureset_minus(&p->guarded, &p->required);
	p->psabi = tgvm_psabi_required(&p->required);
	return 0;
}

static int link_programs(struct tgvm_scan_report *rep, size_t input, size_t first,
                         struct scan_fs *fs, const struct tgvm_scan_options *o)
{
	size_t end = rep->nresults;
	struct result_index ix = {0};
	int ret = result_index_build(&ix, rep, first);

	for (size_t i = first; i < end && ret == 0; i++)
		ret = link_program(rep, input, i, &ix, fs, o);
	free(ix.v);
	return ret;
}

static int cmp_ev(const void *a, const void *b)
{
	const struct tgvm_scan_evidence *x = a, *y = b;

	if (x->feature != y->feature)
		return (int)x->feature - (int)y->feature;
	if (x->cls != y->cls)
		return (int)x->cls - (int)y->cls;
	return 0;
}

/* Evidence by feature and class, then as found (index order). */
static int cmp_ev_index(const void *a, const void *b, void *ud)
{
	const struct tgvm_scan_evidence *ev = ud;
	size_t x = *(const size_t *)a, y = *(const size_t *)b;
	int c = cmp_ev(&ev[x], &ev[y]);

	return c ? c : (x > y) - (x < y);
}

static int finish(struct tgvm_scan_report *rep)
{
	struct tgvm_scan_totals *t = &rep->totals;
	size_t nev = 0, nf = 0;

	for (size_t i = 0; i < rep->nresults; i++) {
		const struct scan_result *res = &rep->results[i];

		t->files++;
		/* bytes of each file once, whatever its number of names */
		if (res->hardlink)
			t->hardlinks++;
		else
			t->bytes += res->size;
		if (res->status == -ENOEXEC) {
			t->non_elf++;
		} else if (res->status == -EXDEV) {
			t->non_x86_64++;
		} else if (res->status) {
			t->errors++;
			if (add_error(rep, res->path, res->error ? res->error : "failed") < 0)
				return -ENOMEM;
		} else {
			t->elf_files++;
			t->programs += res->program;
			t->segments += res->segments[0] != 0;
			if (!res->hardlink) {
				t->code_bytes += res->code_bytes;
				t->insns += res->insns;
			}
			/* programs count with what they load (below); other files whole */
			if (!res->program && !res->linked)
				tgvm_featureset_union(&t->required, &res->req);
			tgvm_featureset_union(&rep->library_only, &res->req);
			tgvm_featureset_union(&t->guarded, &res->grd);
			nev += res->nfindings;
			nf++;
		}
	}
	for (size_t i = 0; i < rep->nprogs; i++)
		tgvm_featureset_union(&t->required, &rep->progs[i].required);
	tgvm_featureset_minus(&rep->library_only, &t->required);
	tgvm_featureset_minus(&t->guarded, &t->required);
	t->psabi = tgvm_psabi_required(&t->required);
	rep->files = calloc(nf ? nf : 1, sizeof(*rep->files));
	rep->ev = calloc(nev ? nev : 1, sizeof(*rep->ev));
	if (!rep->files || !rep->ev)
		return -ENOMEM;
	for (size_t i = 0; i < rep->nresults; i++) {
		const struct scan_result *res = &rep->results[i];

		if (res->status)
			continue;
		rep->files[rep->nfiles++] =
		    (struct tgvm_scan_file){rep->inputs.v[rep->result_input[i]],
		                            res->path,
		                            res->program,
		                            res->is_static,
		                            res->hwcaps_level,
		                            res->isa_needed,
		                            res->req,
		                            res->grd,
		                            res->unk,
		                            res->code_bytes,
		                            res->insns,
		                            res->segments[0] ? res->segments : NULL};
		tgvm_featureset_minus(&rep->files[rep->nfiles - 1].guarded, &res->req);
		tgvm_featureset_minus(&rep->files[rep->nfiles - 1].unknown, &res->req);
		tgvm_featureset_minus(&rep->files[rep->nfiles - 1].unknown, &res->grd);
		for (size_t k = 0; k < res->nfindings; k++) {
			const struct scan_finding *fd = &res->findings[k];

			rep->ev[rep->nev++] = (struct tgvm_scan_evidence){
			    fd->feature,
			    fd->cls == SCAN_C_REQUIRED  ? TGVM_SCAN_REQUIRED
			    : fd->cls == SCAN_C_UNKNOWN ? TGVM_SCAN_UNKNOWN
			                                : TGVM_SCAN_GUARDED,
			    res->path,
			    fd->symbol,
			    fd->near,
			    fd->addr,
			    fd->insn,
			    fd->cls != SCAN_C_GUARDED ? NULL
			                              : scan_guard_kind_to_string(fd->guard_kind),
			    fd->guard_addr,
			    fd->detail};
		}
	}
	/* stable: keeps file order inside a feature and class (O(n log n): a
	 * whole /usr holds tens of thousands of findings) */
	if (rep->nev > 1) {
		size_t *ord = malloc(rep->nev * sizeof(*ord));
		struct tgvm_scan_evidence *sorted = malloc(rep->nev * sizeof(*sorted));

		if (!ord || !sorted) {
			free(ord);
			free(sorted);
			return -ENOMEM;
		}
		for (size_t i = 0; i < rep->nev; i++)
			ord[i] = i;
		qsort_r(ord, rep->nev, sizeof(*ord), cmp_ev_index, rep->ev);
		for (size_t i = 0; i < rep->nev; i++)
			sorted[i] = rep->ev[ord[i]];
		free(rep->ev);
		rep->ev = sorted;
		free(ord);
	}
	{
		size_t k = 0;

		for (int f = 0; f <= TGVM_F__MAX; f++) {
			while (k < rep->nev && (int)rep->ev[k].feature < f)
				k++;
			rep->ev_start[f] = k;
		}
	}
	return 0;
}

int tgvm_scan_run(const char *const *paths, size_t n_paths, const struct tgvm_scan_options *opts,
                  struct tgvm_scan_report **ret, struct tgvm_error *reterr)
{
	struct tgvm_scan_report *rep = NULL;
	struct walk *walks = NULL;
	struct scan_fs **fss = NULL;
	uint64_t t0 = tgvm_now_ns(), files_total = 0, bytes_total = 0, files_before = 0;
	int r;

	rep = calloc(1, sizeof(*rep));
	walks = calloc(n_paths ? n_paths : 1, sizeof(*walks));
	fss = calloc(n_paths ? n_paths : 1, sizeof(*fss));
	if (!rep || !walks || !fss) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	tgvm_strv_init(&rep->inputs);
	/* open and list every input first, so progress knows the total */
	for (size_t i = 0; i < n_paths; i++) {
		struct stat st;
		bool dup = false;

		if ((r = tgvm_strv_push(&rep->inputs, paths[i])) < 0)
			goto out;
		/* the same file or tree named again (under any name) is read once */
		if (stat(paths[i], &st) == 0) {
			for (size_t k = 0; k < i && !dup; k++)
				dup = walks[k].dev == (uint64_t)st.st_dev &&
				      walks[k].ino == (uint64_t)st.st_ino;
			walks[i].dev = (uint64_t)st.st_dev;
			walks[i].ino = (uint64_t)st.st_ino;
		}
		if (dup) {
			rep->totals.duplicate_inputs++;
			continue;
		}
		if ((r = scan_fs_open(paths[i], &fss[i], reterr)) < 0)
			goto out;
		walks[i].rep = rep;
		if ((r = scan_fs_walk(fss[i], walk_cb, walk_err, &walks[i], reterr)) < 0)
			goto out;
		if ((r = walk_link_names(&walks[i])) < 0) {
			tgvm_error_set(reterr, -r, "out of memory");
			goto out;
		}
		/* progress counts the files analysed, each once */
		for (size_t k = 0; k < walks[i].n; k++)
			if (walks[i].v[k].same == SIZE_MAX) {
				files_total++;
				bytes_total += walks[i].v[k].size;
			}
	}
	for (size_t i = 0; i < n_paths; i++) {
		struct job j = {.fs = fss[i], .ents = walks[i].v, .n = walks[i].n};
		size_t first = rep->nresults;
		struct scan_fs *rootfs = NULL;

		if (!fss[i])
			continue; /* named before */
		pthread_mutex_init(&j.lock, NULL);
		j.res = calloc(j.n ? j.n : 1, sizeof(*j.res));
		if (!j.res) {
			r = tgvm_error_set(reterr, ENOMEM, "out of memory");
			goto out;
		}
		r = run_jobs(&j, opts, files_before, files_total, bytes_total);
		files_before += j.nwork;
		for (size_t k = 0; k < j.n && r == 0; k++)
			r = push_result(rep, &j.res[k], i);
		for (size_t k = 0; k < j.n; k++)
			scan_result_free(&j.res[k]);
		free(j.res);
		pthread_mutex_destroy(&j.lock);
		if (r < 0)
			goto out;
		/* A lone file given by absolute path: its libraries come from this
		 * machine's root, resolved as in any root tree. */
		if (scan_fs_kind(fss[i]) == SCAN_FS_FILE && paths[i][0] == '/' &&
		    scan_fs_open("/", &rootfs, NULL) == 0) {
			r = link_programs(rep, i, first, rootfs, opts);
			scan_fs_free(rootfs);
			rootfs = NULL;
		} else {
			r = link_programs(rep, i, first, fss[i], opts);
		}
		if (r < 0) {
			tgvm_error_set(reterr, -r, "cannot link programs to their libraries");
			goto out;
		}
	}
	if ((r = finish(rep)) < 0) {
		tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	rep->totals.elapsed_ns = tgvm_now_ns() - t0;
	if (opts && opts->progress) {
		struct tgvm_scan_progress p = {files_total, files_total, bytes_total, bytes_total,
		                               NULL};

		opts->progress(&p, opts->progress_ud);
	}
	*ret = rep;
	rep = NULL;
	r = 0;
out:
	for (size_t i = 0; walks && i < n_paths; i++) {
		for (size_t k = 0; k < walks[i].n; k++)
			free(walks[i].v[k].path);
		free(walks[i].v);
		scan_fs_free(fss[i]);
	}
	free(walks);
	free(fss);
	tgvm_scan_report_free(rep);
	return r;
}

void tgvm_scan_report_free(struct tgvm_scan_report *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nresults; i++)
		scan_result_free(&r->results[i]);
	free(r->results);
	free(r->result_input);
	for (size_t i = 0; i < r->nprogs; i++) {
		tgvm_strv_release(&r->prog_libs[i]);
		tgvm_strv_release(&r->prog_missing[i]);
	}
	free(r->prog_libs);
	free(r->prog_missing);
	free(r->progs);
	free(r->files);
	free(r->ev);
	for (size_t i = 0; i < r->nerrors; i++) {
		free(r->errors[i].path);
		free(r->errors[i].msg);
	}
	free(r->errors);
	tgvm_strv_release(&r->inputs);
	free(r);
}

const struct tgvm_scan_totals *tgvm_scan_report_totals(const struct tgvm_scan_report *r)
{
	return &r->totals;
}

size_t tgvm_scan_report_n_files(const struct tgvm_scan_report *r)
{
	return r->nfiles;
}

const struct tgvm_scan_file *tgvm_scan_report_file(const struct tgvm_scan_report *r, size_t i)
{
	return i < r->nfiles ? &r->files[i] : NULL;
}

size_t tgvm_scan_report_n_programs(const struct tgvm_scan_report *r)
{
	return r->nprogs;
}

const struct tgvm_scan_program *tgvm_scan_report_program(const struct tgvm_scan_report *r, size_t i)
{
	struct tgvm_scan_program *p;

	if (i >= r->nprogs)
		return NULL;
	p = &r->progs[i];
	p->libraries = (const char *const *)r->prog_libs[i].v;
	p->n_libraries = r->prog_libs[i].n;
	p->missing = (const char *const *)r->prog_missing[i].v;
	p->n_missing = r->prog_missing[i].n;
	return p;
}

size_t tgvm_scan_report_n_errors(const struct tgvm_scan_report *r)
{
	return r->nerrors;
}

void tgvm_scan_report_error(const struct tgvm_scan_report *r, size_t i, const char **ret_path,
                            const char **ret_msg)
{
	*ret_path = i < r->nerrors ? r->errors[i].path : NULL;
	*ret_msg = i < r->nerrors ? r->errors[i].msg : NULL;
}

size_t tgvm_scan_report_evidence(const struct tgvm_scan_report *r, enum tgvm_feature f,
                                 const struct tgvm_scan_evidence **ret)
{
	if ((unsigned)f >= TGVM_F__MAX) {
		*ret = NULL;
		return 0;
	}
	*ret = r->ev + r->ev_start[f];
	return r->ev_start[f + 1] - r->ev_start[f];
}
