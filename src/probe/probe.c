// SPDX-License-Identifier: MIT
/*
 * The probe driver: chooses the reference CPU and the candidates (what TCG
 * cannot present is untestable), runs the reference, drives the group-testing
 * search with parallel runs, maps SIGILL hints to candidates, proves the
 * found set minimal (each feature taken away alone) and verifies it,
 * cross-checks a scan report, and writes the JSON report.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "probe/probe-int.h"
#include "scan/source.h"
#include "tgvm/model.h"
#include "tgvm/scan.h"
#include "tgvm/vm.h"
#include "util/util.h"

static const char *const outcome_names[TGVM_PROBE_OUTCOME__MAX] = {
    [TGVM_PROBE_PASS] = "pass",       [TGVM_PROBE_SIGILL] = "sigill",
    [TGVM_PROBE_SIGNAL] = "signal",   [TGVM_PROBE_STATUS] = "status",
    [TGVM_PROBE_OUTPUT] = "output",   [TGVM_PROBE_CHECK] = "check",
    [TGVM_PROBE_TIMEOUT] = "timeout", [TGVM_PROBE_NORESULT] = "no-result",
};

const char *tgvm_probe_outcome_to_string(enum tgvm_probe_outcome o)
{
	return (unsigned)o < TGVM_PROBE_OUTCOME__MAX ? outcome_names[o] : "?";
}

/*
 * Dependencies as TCG sees them: the vocabulary's, plus avx needing sse4.2.
 * Every AVX CPU has SSE4.2, and QEMU's TCG refuses the VEX forms of SSE4.1
 * instructions (vpextrd) when sse4.1 is off (measured: avx2-plain dies of
 * SIGILL there), so under TCG taking sse4.x away takes avx away.
 */
static void tcg_close(struct tgvm_featureset *s)
{
	tgvm_featureset_close(s);
	if (tgvm_featureset_has(s, TGVM_F_AVX) && !tgvm_featureset_has(s, TGVM_F_SSE4_2)) {
		tgvm_featureset_add(s, TGVM_F_SSE4_2);
		tgvm_featureset_close(s);
	}
}

static void tcg_close_down(struct tgvm_featureset *s)
{
	tgvm_featureset_close_down(s);
	if (tgvm_featureset_has(s, TGVM_F_AVX) && !tgvm_featureset_has(s, TGVM_F_SSE4_2)) {
		tgvm_featureset_del(s, TGVM_F_AVX);
		tgvm_featureset_close_down(s);
	}
}

struct driver {
	struct probe_ctx ctx;
	const struct tgvm_probe_options *opt;
	struct tgvm_probe_result *res;
	const char *base;
	enum tgvm_feature *item; /* candidate of each search item */
	size_t nitems;
	struct probe_obs ref;
	/* shared between the workers, under lock */
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct probe_search *search;
	unsigned running;
	unsigned slots;   /* runs at a time, the reference included */
	bool ref_pending; /* the reference is running: search runs wait to be judged */
	bool ref_failed;
	int error;
	struct tgvm_error err;
	size_t cap_runs;
};

/* What the CPU has when @removed candidates are taken away (closure applied). */
static void config_present(const struct driver *d, const struct tgvm_featureset *removed,
                           struct tgvm_featureset *ret)
{
	*ret = d->res->reference;
	tgvm_featureset_minus(ret, removed);
	tcg_close_down(ret);
}

static char *cpu_string(const struct driver *d, const struct tgvm_featureset *present)
{
	struct tgvm_featureset gone = d->res->reference;
	struct tgvm_buf b;

	tgvm_featureset_minus(&gone, present);
	tgvm_buf_init(&b);
	tgvm_buf_printf(&b, "%s", d->base);
	TGVM_FEATURESET_FOREACH(f, &gone)
	tgvm_buf_printf(&b, ",-%s", tgvm_feature_info(f)->qemu_name);
	return b.data;
}

/* Run the --check command on a run's output; true when it exits 0. */
static bool check_cmd(const struct driver *d, const struct probe_obs *o)
{
	char path[600], st[32];
	int fd, status = 0;
	pid_t pid;

	snprintf(path, sizeof(path), "%s/out-XXXXXX", d->ctx.tmpdir);
	fd = mkstemp(path);
	if (fd < 0)
		return false;
	for (size_t off = 0; off < o->out_len;) {
		ssize_t w = write(fd, o->out + off, o->out_len - off);

		if (w <= 0)
			break;
		off += (size_t)w;
	}
	lseek(fd, 0, SEEK_SET);
	snprintf(st, sizeof(st), "%d",
	         d->opt->mode == TGVM_PROBE_VM ? o->status
	                                       : (o->exited ? WEXITSTATUS(o->status) : -1));
	pid = fork();
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(fd, 0);
		if (devnull >= 0) {
			dup2(devnull, 1);
			dup2(devnull, 2);
		}
		setenv("TGVM_PROBE_STATUS", st, 1);
		execl("/bin/sh", "sh", "-c", d->opt->check, (char *)NULL);
		_exit(127);
	}
	close(fd);
	unlink(path);
	if (pid < 0)
		return false;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

static int exit_code(const struct driver *d, const struct probe_obs *o)
{
	if (d->opt->mode == TGVM_PROBE_VM)
		return o->status;
	if (o->exited)
		return WEXITSTATUS(o->status);
	return WIFSIGNALED(o->status) ? 128 + WTERMSIG(o->status) : -1;
}

/* Did the run pass? Turns "ran to the end" into a verdict against the reference. */
static void judge(const struct driver *d, struct probe_obs *o)
{
	if (o->outcome != TGVM_PROBE_PASS)
		return;
	if (d->opt->check) {
		if (!check_cmd(d, o)) {
			o->outcome = TGVM_PROBE_CHECK;
			snprintf(o->detail + strlen(o->detail),
			         sizeof(o->detail) - strlen(o->detail),
			         "; the check command said no");
		}
		return;
	}
	if (exit_code(d, o) != exit_code(d, &d->ref)) {
		o->outcome = TGVM_PROBE_STATUS;
		snprintf(o->detail, sizeof(o->detail), "exit status %d, reference %d",
		         exit_code(d, o), exit_code(d, &d->ref));
	} else if (o->out_len != d->ref.out_len || memcmp(o->out, d->ref.out, o->out_len)) {
		size_t i = 0;

		while (i < o->out_len && i < d->ref.out_len && o->out[i] == d->ref.out[i])
			i++;
		o->outcome = TGVM_PROBE_OUTPUT;
		snprintf(o->detail, sizeof(o->detail),
		         "output differs from the reference at byte %zu (%zu bytes, reference %zu)",
		         i, o->out_len, d->ref.out_len);
	}
}

static int run_once(struct driver *d, const struct tgvm_featureset *present, struct probe_obs *ret,
                    struct tgvm_error *reterr)
{
	char *cpu = cpu_string(d, present);
	int r;

	if (!cpu)
		return -ENOMEM;
	if (d->opt->mode == TGVM_PROBE_VM)
		r = probe_run_vm(&d->ctx, cpu, present, ret, reterr);
	else
		r = probe_run_user(&d->ctx, cpu, present, ret, reterr);
	free(cpu);
	return r;
}

/* Record a finished run (lock held). */
static int record(struct driver *d, const char *phase, const struct tgvm_featureset *removed,
                  const struct probe_obs *o, bool hinted, uint64_t ns)
{
	struct tgvm_probe_result *res = d->res;
	struct tgvm_probe_run_info *ri;

	if (res->nruns == d->cap_runs) {
		size_t nc = d->cap_runs ? d->cap_runs * 2 : 64;
		void *nv = realloc(res->run, nc * sizeof(*res->run));

		if (!nv)
			return -ENOMEM;
		res->run = nv;
		d->cap_runs = nc;
	}
	ri = &res->run[res->nruns++];
	memset(ri, 0, sizeof(*ri));
	ri->phase = phase;
	ri->removed = *removed;
	ri->outcome = o->outcome;
	ri->status = exit_code(d, o);
	ri->sigill_feature = o->sigill_feature;
	ri->sigill_addr = o->sigill_addr;
	ri->hinted = hinted;
	ri->alone = -1;
	snprintf(ri->detail, sizeof(ri->detail), "%s", o->detail);
	snprintf(ri->fault, sizeof(ri->fault), "%s", o->fault);
	ri->ns = ns;
	res->runs++;
	if (d->opt->progress) {
		struct tgvm_probe_progress p = {
		    .runs_done = res->runs, .runs_running = d->running, .last = ri->detail};
		const uint32_t *f;

		p.found = d->search ? (unsigned)probe_search_found(d->search, &f) : 0;
		d->opt->progress(&p, d->opt->progress_ud);
	}
	return 0;
}

/* The search item a SIGILL points at: the feature itself, or the item whose
 * removal took it away (a dependency). -1 when none of @items. */
static int hint_item(const struct driver *d, const uint32_t *items, size_t n, int feature)
{
	if (feature < 0)
		return -1;
	for (size_t i = 0; i < n; i++)
		if ((int)d->item[items[i]] == feature)
			return (int)items[i];
	for (size_t i = 0; i < n; i++) {
		struct tgvm_featureset p = d->res->reference;

		tgvm_featureset_del(&p, d->item[items[i]]);
		tcg_close_down(&p);
		if (!tgvm_featureset_has(&p, (enum tgvm_feature)feature))
			return (int)items[i];
	}
	return -1;
}

/* Whatever a needed item depends on is needed too: declare it (lock held). */
static void declare_deps(struct driver *d)
{
	const uint32_t *found;
	size_t nf = probe_search_found(d->search, &found);
	struct tgvm_featureset need;

	tgvm_featureset_clear(&need);
	for (size_t i = 0; i < nf; i++)
		tgvm_featureset_add(&need, d->item[found[i]]);
	tcg_close(&need);
	for (size_t i = 0; i < d->nitems; i++)
		if (tgvm_featureset_has(&need, d->item[i]))
			probe_search_declare(d->search, (uint32_t)i);
}

static void *worker(void *arg)
{
	struct driver *d = arg;

	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct probe_test t;
		struct tgvm_featureset removed, present;
		struct probe_obs o;
		struct tgvm_error err = {0};
		uint32_t *items;
		size_t nitems;
		uint64_t t0;
		int r, hint;

		if (d->error || d->ref_failed || (probe_search_done(d->search) && d->running == 0))
			break;
		if (d->running + (d->ref_pending ? 1 : 0) >= d->slots ||
		    probe_search_next(d->search, &t) != 1) {
			pthread_cond_wait(&d->cond, &d->lock);
			continue;
		}
		tgvm_featureset_clear(&removed);
		for (size_t i = 0; i < t.n; i++)
			tgvm_featureset_add(&removed, d->item[t.items[i]]);
		for (size_t i = 0; i < t.ncleared; i++)
			tgvm_featureset_add(&removed, d->item[t.cleared[i]]);
		config_present(d, &removed, &present);
		removed = d->res->reference;
		tgvm_featureset_minus(&removed, &present);
		items = malloc((t.n ? t.n : 1) * sizeof(uint32_t));
		if (!items) {
			d->error = -ENOMEM;
			break;
		}
		memcpy(items, t.items, t.n * sizeof(uint32_t));
		nitems = t.n;
		d->running++;
		pthread_mutex_unlock(&d->lock);

		t0 = tgvm_now_ns();
		r = run_once(d, &present, &o, &err);
		/* Judged against the reference, which may still be running. */
		pthread_mutex_lock(&d->lock);
		while (d->ref_pending)
			pthread_cond_wait(&d->cond, &d->lock);
		if (d->ref_failed) {
			d->running--;
			if (r == 0)
				probe_obs_release(&o);
			free(items);
			break;
		}
		pthread_mutex_unlock(&d->lock);
		if (r == 0)
			judge(d, &o);

		pthread_mutex_lock(&d->lock);
		d->running--;
		if (r < 0) {
			if (!d->error) {
				d->error = r;
				d->err = err;
			}
			free(items);
			pthread_cond_broadcast(&d->cond);
			break;
		}
		/* A failing run that hit SIGILL on a feature taken away (in VM
		 * mode the command's rc need not say SIGILL: a script may go on). */
		hint = o.outcome != TGVM_PROBE_PASS ? hint_item(d, items, nitems, o.sigill_feature)
		                                    : -1;
		if (hint >= 0)
			d->res->hinted++;
		probe_search_result(d->search, t.id, o.outcome == TGVM_PROBE_PASS, hint);
		declare_deps(d);
		if (record(d, "search", &removed, &o, hint >= 0, tgvm_now_ns() - t0) < 0 &&
		    !d->error)
			d->error = -ENOMEM;
		probe_obs_release(&o);
		free(items);
		pthread_cond_broadcast(&d->cond);
	}
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Reference model features and what TCG cannot give, per mode. */
static int choose_sets(struct driver *d, struct tgvm_featureset *ret_base_feats,
                       struct tgvm_error *reterr)
{
	const struct tgvm_probe_options *opt = d->opt;
	struct tgvm_probe_result *res = d->res;
	struct tgvm_modeldb *db = NULL;
	const struct tgvm_cpu_model *m;
	struct tgvm_featureset un, flagged, base_feats, baseline;
	int r;

	r = tgvm_modeldb_load_default(&db, reterr);
	if (r < 0)
		return r;
	r = tgvm_modeldb_lookup(db, d->base, &m, reterr);
	if (r < 0)
		goto out;
	base_feats = m->features;
	tgvm_featureset_clear(&un);
	if (opt->mode == TGVM_PROBE_PROGRAM) {
		struct tgvm_featureset ask = db->settable, none;

		tgvm_featureset_with_flags(&flagged, TGVM_FF_SYS | TGVM_FF_HV);
		tgvm_featureset_minus(&ask, &flagged);
		r = probe_user_unavailable(opt->qemu_user ? opt->qemu_user : "qemu-x86_64", &ask,
		                           &un, reterr);
		if (r < 0)
			goto out;
		/* Features this QEMU cannot switch at all are untestable too. */
		tgvm_featureset_clear(&none);
		for (int f = 0; f < TGVM_F__MAX; f++)
			if (!tgvm_featureset_has(&db->settable, f))
				tgvm_featureset_add(&none, f);
		tgvm_featureset_minus(&none, &flagged);
		tgvm_featureset_union(&un, &none);
	} else {
		tgvm_featureset_with_flags(&flagged, TGVM_FF_HV);
		for (int f = 0; f < TGVM_F__MAX; f++)
			if (!tgvm_featureset_has(&db->tcg_max, f))
				tgvm_featureset_add(&un, f);
		tgvm_featureset_minus(&un, &flagged);
	}
	res->reference = base_feats;
	tgvm_featureset_minus(&res->reference, &un);
	tcg_close_down(&res->reference);

	tgvm_linux_baseline(&baseline);
	if (opt->have_candidates) {
		struct tgvm_featureset want = opt->candidates;

		tcg_close(&want);
		res->candidates = want;
		tgvm_featureset_intersect(&res->candidates, &res->reference);
		res->untestable = want;
		tgvm_featureset_minus(&res->untestable, &res->reference);
		/* Dependencies reach into the baseline (popcnt's sse2): never tested. */
		tgvm_featureset_minus(&res->candidates, &baseline);
		tgvm_featureset_minus(&res->untestable, &baseline);
	} else {
		if (opt->mode == TGVM_PROBE_VM && res->have_scan) {
			res->candidates = res->scan_required;
			tgvm_featureset_union(&res->candidates, &res->scan_guarded);
			tcg_close(&res->candidates);
			tgvm_featureset_intersect(&res->candidates, &res->reference);
		} else {
			res->candidates = res->reference;
		}
		tgvm_featureset_minus(&res->candidates, &baseline);
		tgvm_featureset_minus(&res->candidates, &flagged);
		res->untestable = un;
	}
	if (res->have_scan) {
		struct tgvm_featureset s = res->scan_required;

		tgvm_featureset_union(&s, &res->scan_guarded);
		tgvm_featureset_intersect(&s, &un);
		tgvm_featureset_union(&res->untestable, &s);
	}
	res->fixed = res->reference;
	tgvm_featureset_minus(&res->fixed, &res->candidates);
	*ret_base_feats = base_feats;
out:
	tgvm_modeldb_free(db);
	return r;
}

static void cross_check(struct tgvm_probe_result *res)
{
	struct tgvm_featureset req = res->scan_required, closed = res->scan_required, t;

	/* Compared over what was tested; deps count as needed with their users. */
	tcg_close(&closed);
	res->false_positive = req;
	tgvm_featureset_intersect(&res->false_positive, &res->candidates);
	t = res->required;
	tcg_close(&t);
	tgvm_featureset_minus(&res->false_positive, &t);
	res->false_negative = res->required;
	tgvm_featureset_minus(&res->false_negative, &closed);
	res->scan_untestable = req;
	tgvm_featureset_intersect(&res->scan_untestable, &res->untestable);
}

/* Is @w a word sh knows without a file (a builtin or a keyword)? */
static bool sh_builtin(const char *w, size_t n)
{
	static const char *const names[] = {
	    ".",        ":",     "[",      "alias", "break",  "case",   "cd",    "command",
	    "continue", "echo",  "eval",   "exec",  "exit",   "export", "false", "for",
	    "if",       "kill",  "printf", "pwd",   "read",   "return", "set",   "shift",
	    "test",     "trap",  "true",   "type",  "ulimit", "umask",  "unset", "until",
	    "wait",     "while", "{",      "!",     "(",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i]) == n && !memcmp(names[i], w, n))
			return true;
	return false;
}

/*
 * A user's disk image, checked before any guest boots: readable, a raw image
 * (not qcow2) with an ext2/3/4 file system (whole disk or an MBR/GPT partition; read
 * without mounting, by the scan module's reader), and the command's program
 * in it. @run's first word is looked up when it names a program: an absolute
 * or relative path, else in PATH; with a /bin/sh in the image, words the
 * shell knows itself and shell syntax are left to the guest.
 */
static int disk_check(const char *image, const char *run, struct tgvm_error *reterr)
{
	static const char *const dirs[] = {"/usr/local/sbin", "/usr/local/bin", "/usr/sbin",
	                                   "/usr/bin",        "/sbin",          "/bin"};
	struct scan_fs *fs = NULL;
	struct tgvm_error err = {0};
	char path[4200];
	const char *w = run;
	size_t n;
	bool has_sh, found = false;
	int r;

	/* Opening says what is wrong: missing, unreadable, qcow2, no ext. */
	r = scan_fs_open(image, &fs, &err);
	if (r < 0) {
		if (reterr)
			*reterr = err; /* names the file */
		return r;
	}
	if (scan_fs_kind(fs) == SCAN_FS_DIR) {
		scan_fs_free(fs);
		return tgvm_error_set(reterr, EISDIR, "disk image '%s' is a directory", image);
	}
	if (scan_fs_kind(fs) != SCAN_FS_EXT4) {
		scan_fs_free(fs);
		return tgvm_error_set(reterr, EINVAL,
		                      "disk image '%s' holds no ext2/3/4 file system (on the "
		                      "whole disk or in an MBR/GPT partition)",
		                      image);
	}
	has_sh = scan_fs_exists(fs, "/bin/sh", NULL, 0);
	while (*w == ' ' || *w == '\t')
		w++;
	n = strcspn(w, " \t\n");
	if (n == 0 || n >= 4096 ||
	    (has_sh &&
	     (sh_builtin(w, n) || memchr(w, '=', n) || strcspn(w, "$`'\"\\;&|<>(){}*?~") < n))) {
		scan_fs_free(fs);
		return 0;
	}
	if (memchr(w, '/', n)) {
		snprintf(path, sizeof(path), "%s%.*s", *w == '/' ? "" : "/", (int)n, w);
		found = scan_fs_exists(fs, path, NULL, 0);
	} else {
		for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]) && !found; i++) {
			snprintf(path, sizeof(path), "%s/%.*s", dirs[i], (int)n, w);
			found = scan_fs_exists(fs, path, NULL, 0);
		}
	}
	scan_fs_free(fs);
	if (!found)
		return tgvm_error_set(reterr, ENOENT,
		                      "'%.*s' is not in disk image '%s' (the command runs "
		                      "chrooted there; PATH /usr/local/sbin:/usr/local/bin:"
		                      "/usr/sbin:/usr/bin:/sbin:/bin)",
		                      (int)n, w, image);
	return 0;
}

static int setup_vm(struct driver *d, struct tgvm_error *reterr)
{
	const struct tgvm_probe_options *opt = d->opt;
	static struct tgvm_guest g; /* paths only; read-only after locate */
	/* The kernel's report of a fatal signal holds the faulting instruction's
	 * bytes; init copies it to the console after the result. */
	struct tgvm_guest_args ga = {
	    .run = opt->run,
	    .poweroff = true,
	    .extra = opt->disk ? "print-fatal-signals=1 tgvm.faults=1 tgvm.disk=vda"
	                       : "print-fatal-signals=1 tgvm.faults=1"};
	int r;

	if (!opt->kernel || !opt->initrd) {
		r = tgvm_guest_locate(&g, reterr);
		if (r < 0)
			return r;
	}
	d->ctx.kernel = opt->kernel ? opt->kernel : g.kernel;
	d->ctx.initrd = opt->initrd ? opt->initrd : g.initrd;
	if (access(d->ctx.kernel, R_OK) < 0)
		return tgvm_error_set(reterr, errno, "cannot read kernel '%s': %s", d->ctx.kernel,
		                      strerror(errno));
	if (access(d->ctx.initrd, R_OK) < 0)
		return tgvm_error_set(reterr, errno, "cannot read initrd '%s': %s", d->ctx.initrd,
		                      strerror(errno));
	if (opt->disk) {
		r = disk_check(opt->disk, opt->run, reterr);
		if (r < 0)
			return r;
		d->ctx.disk = opt->disk;
		d->ctx.disk_format = "raw";
	}
	return tgvm_guest_cmdline(&ga, &d->ctx.append, reterr);
}

/*
 * The program to run: argv[0] found in PATH when it names no directory, and
 * refused early unless it is an x86-64 ELF file (qemu-x86_64 says nothing
 * useful when it cannot load one). @ret_path gets the path.
 */
static int resolve_program(const char *name, char *ret_path, size_t size, struct tgvm_error *reterr)
{
	unsigned char hdr[20];
	int fd, n;

	if (strchr(name, '/')) {
		snprintf(ret_path, size, "%s", name);
	} else {
		const char *path = getenv("PATH");
		struct tgvm_strv dirs;
		bool found = false;

		tgvm_strv_init(&dirs);
		if (tgvm_strv_split(&dirs, path && *path ? path : "/usr/bin:/bin", ":") < 0)
			return -ENOMEM;
		for (size_t i = 0; i < dirs.n && !found; i++) {
			snprintf(ret_path, size, "%s/%s", dirs.v[i], name);
			found = access(ret_path, X_OK) == 0;
		}
		tgvm_strv_release(&dirs);
		if (!found)
			return tgvm_error_set(reterr, ENOENT, "cannot find '%s' in PATH", name);
	}
	fd = open(ret_path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return tgvm_error_set(reterr, errno, "cannot open '%s': %s", ret_path,
		                      strerror(errno));
	n = (int)read(fd, hdr, sizeof(hdr));
	close(fd);
	if (n < (int)sizeof(hdr) || memcmp(hdr, "\177ELF", 4) || hdr[4] != 2 || hdr[18] != 62)
		return tgvm_error_set(reterr, ENOEXEC,
		                      "'%s' is not an x86-64 ELF program (scripts and other "
		                      "programs they start are probed in VM mode: --vm --run)",
		                      ret_path);
	return 0;
}

static void rm_tmpdir(const char *dir)
{
	char path[600];

	/* Only sockets and check files of ours live here; they are removed as used. */
	snprintf(path, sizeof(path), "%s", dir);
	rmdir(path);
}

void probe_classify(const struct tgvm_featureset *found, const struct tgvm_featureset *fails_alone,
                    struct tgvm_featureset *ret_proven, struct tgvm_featureset *ret_implied,
                    struct tgvm_featureset *ret_dropped)
{
	struct tgvm_featureset proven = *found, implied;

	tgvm_featureset_intersect(&proven, fails_alone);
	implied = proven;
	tgvm_featureset_close_arch(&implied);
	tgvm_featureset_intersect(&implied, found);
	tgvm_featureset_minus(&implied, &proven);
	*ret_dropped = *found;
	tgvm_featureset_minus(ret_dropped, &proven);
	tgvm_featureset_minus(ret_dropped, &implied);
	*ret_proven = proven;
	*ret_implied = implied;
}

/* Runs of fixed configurations, several at a time (prove_minimal). */
struct batch {
	struct driver *d;
	const char *phase;
	const struct tgvm_featureset *present; /* one per run */
	const int *alone;                      /* per run, the feature taken alone, or NULL */
	bool *pass;                            /* filled per run */
	size_t n, next;
	int error;
	struct tgvm_error err;
};

static void *batch_worker(void *arg)
{
	struct batch *b = arg;
	struct driver *d = b->d;

	pthread_mutex_lock(&d->lock);
	while (!b->error && b->next < b->n) {
		size_t i = b->next++;
		struct tgvm_featureset removed = d->res->reference;
		struct tgvm_error err = {0};
		struct probe_obs o;
		uint64_t t0 = tgvm_now_ns();
		int r;

		pthread_mutex_unlock(&d->lock);
		r = run_once(d, &b->present[i], &o, &err);
		if (r == 0)
			judge(d, &o);
		pthread_mutex_lock(&d->lock);
		if (r < 0) {
			if (!b->error) {
				b->error = r;
				b->err = err;
			}
			break;
		}
		tgvm_featureset_minus(&removed, &b->present[i]);
		b->pass[i] = o.outcome == TGVM_PROBE_PASS;
		r = record(d, b->phase, &removed, &o, false, tgvm_now_ns() - t0);
		if (r == 0 && b->alone)
			d->res->run[d->res->nruns - 1].alone = b->alone[i];
		probe_obs_release(&o);
		if (r < 0 && !b->error)
			b->error = r;
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

/* Run the @n configurations @present, @jobs at a time; @ret_pass[i] per run. */
static int run_batch(struct driver *d, const char *phase, const struct tgvm_featureset *present,
                     const int *alone, size_t n, unsigned jobs, bool *ret_pass,
                     struct tgvm_error *reterr)
{
	struct batch b = {
	    .d = d, .phase = phase, .present = present, .alone = alone, .pass = ret_pass, .n = n};
	pthread_t th[TGVM_PROBE_JOBS_MAX];
	unsigned started = 0;

	if (jobs > n)
		jobs = (unsigned)n;
	for (unsigned i = 1; i < jobs; i++) {
		if (pthread_create(&th[i], NULL, batch_worker, &b) != 0)
			break;
		started++;
	}
	batch_worker(&b); /* this thread takes a share too */
	for (unsigned i = 1; i <= started; i++)
		pthread_join(th[i], NULL);
	if (b.error && reterr && b.err.code)
		*reterr = b.err;
	return b.error;
}

/*
 * The search's answer proven, one run per feature: each feature of the
 * found set taken away alone (the exact QEMU flag, no dependency closure).
 * Then the run with exactly the fixed features and the proven and implied
 * ones. When that fails after features were dropped, the search's whole set
 * is run instead, reported, and said not to be proven minimal.
 */
static int prove_minimal(struct driver *d, unsigned jobs, struct tgvm_error *reterr)
{
	struct tgvm_probe_result *res = d->res;
	struct tgvm_featureset found = res->required, fails, all = res->fixed;
	struct tgvm_featureset *present = NULL;
	bool *pass = NULL, ok = false;
	int *alone = NULL;
	size_t n = (size_t)tgvm_featureset_count(&found), i = 0;
	int r;

	present = calloc(n + 1, sizeof(*present));
	pass = calloc(n + 1, sizeof(*pass));
	alone = calloc(n + 1, sizeof(*alone));
	if (!present || !pass || !alone) {
		r = -ENOMEM;
		goto out;
	}
	tgvm_featureset_union(&all, &found);
	TGVM_FEATURESET_FOREACH(f, &found)
	{
		present[i] = all;
		tgvm_featureset_del(&present[i], f);
		alone[i] = f;
		i++;
	}
	r = run_batch(d, "minimal", present, alone, n, jobs, pass, reterr);
	if (r < 0)
		goto out;
	res->minimal_runs = (unsigned)n;
	tgvm_featureset_clear(&fails);
	i = 0;
	TGVM_FEATURESET_FOREACH(f, &found)
	{
		if (!pass[i])
			tgvm_featureset_add(&fails, f);
		i++;
	}
	probe_classify(&found, &fails, &res->proven, &res->implied, &res->dropped);
	res->required = res->proven;
	tgvm_featureset_union(&res->required, &res->implied);

	present[0] = res->fixed;
	tgvm_featureset_union(&present[0], &res->required);
	r = run_batch(d, "verify", present, NULL, 1, 1, &ok, reterr);
	if (r < 0)
		goto out;
	res->verified = ok;
	res->minimal = ok;
	if (!ok && !tgvm_featureset_empty(&res->dropped)) {
		/* Each dropped feature alone was not missed; together they are. */
		res->required = found;
		r = run_batch(d, "verify", &all, NULL, 1, 1, &ok, reterr);
		if (r < 0)
			goto out;
		res->verified = ok;
	}
out:
	free(present);
	free(pass);
	free(alone);
	return r;
}

int tgvm_probe_run(const struct tgvm_probe_options *opt, struct tgvm_probe_result **ret,
                   struct tgvm_error *reterr)
{
	struct driver d;
	struct tgvm_probe_result *res = NULL;
	struct tgvm_featureset base_feats, none;
	char tmpdir[256], program[4096];
	char **argv = NULL;
	const char *tmp = getenv("TMPDIR");
	pthread_t th[TGVM_PROBE_JOBS_MAX];
	unsigned jobs = opt->jobs, started = 0;
	uint64_t t0 = tgvm_now_ns(), rt0;
	int r = 0;
	bool have_tmp = false;

	memset(&d, 0, sizeof(d));
	pthread_mutex_init(&d.lock, NULL);
	pthread_cond_init(&d.cond, NULL);
	d.opt = opt;
	d.ctx.opt = opt;
	d.ref.sigill_feature = -1;
	d.base = opt->cpu_base ? opt->cpu_base : "max";
	if (opt->mode == TGVM_PROBE_PROGRAM && (!opt->argv || !opt->argv[0]))
		return tgvm_error_set(reterr, EINVAL, "no program to probe");
	if (opt->mode == TGVM_PROBE_VM && (!opt->run || !*opt->run))
		return tgvm_error_set(reterr, EINVAL, "no command to run in the guest (--run)");
	if (strlen(d.base) >= sizeof(res->cpu_base))
		return tgvm_error_set(reterr, EINVAL, "CPU model name '%s' is too long", d.base);
	if (jobs == 0) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		jobs = n > 0 ? (unsigned)n : 1;
	}
	if (jobs > TGVM_PROBE_JOBS_MAX)
		jobs = TGVM_PROBE_JOBS_MAX;
	d.ctx.timeout_ms =
	    (opt->timeout_s ? opt->timeout_s : (opt->mode == TGVM_PROBE_VM ? 300 : 60)) * 1000u;
	res = calloc(1, sizeof(*res));
	if (!res)
		return -ENOMEM;
	d.res = res;
	res->mode = opt->mode;
	snprintf(res->cpu_base, sizeof(res->cpu_base), "%s", d.base);
	if (opt->mode == TGVM_PROBE_VM) {
		snprintf(res->workload, sizeof(res->workload), "%s", opt->run);
		if (opt->disk && strlen(opt->disk) >= sizeof(res->disk)) {
			r = tgvm_error_set(reterr, ENAMETOOLONG, "disk image path '%s' is too long",
			                   opt->disk);
			goto out;
		}
		snprintf(res->disk, sizeof(res->disk), "%s", opt->disk ? opt->disk : "");
	} else {
		size_t off = 0;

		for (size_t i = 0; opt->argv[i] && off < sizeof(res->workload) - 1; i++) {
			int n = snprintf(res->workload + off, sizeof(res->workload) - off, "%s%s",
			                 i ? " " : "", opt->argv[i]);

			if (n < 0)
				break;
			off += (size_t)n;
		}
	}
	if (opt->scan_report) {
		enum tgvm_psabi_level lv;

		r = tgvm_scan_report_load(opt->scan_report, &res->scan_required, &res->scan_guarded,
		                          &lv, reterr);
		if (r < 0)
			goto out;
		res->have_scan = true;
	}
	r = choose_sets(&d, &base_feats, reterr);
	if (r < 0)
		goto out;
	if (opt->mode == TGVM_PROBE_VM) {
		r = setup_vm(&d, reterr);
		if (r < 0)
			goto out;
	} else {
		size_t argc = 0;

		while (opt->argv[argc])
			argc++;
		argv = calloc(argc + 1, sizeof(char *));
		if (!argv) {
			r = -ENOMEM;
			goto out;
		}
		r = resolve_program(opt->argv[0], program, sizeof(program), reterr);
		if (r < 0)
			goto out;
		argv[0] = program;
		for (size_t i = 1; i < argc; i++)
			argv[i] = opt->argv[i];
		d.ctx.argv = argv;
	}
	snprintf(tmpdir, sizeof(tmpdir), "%s/tgvm-probe.XXXXXX", tmp && *tmp ? tmp : "/tmp");
	if (!mkdtemp(tmpdir)) {
		r = tgvm_error_set(reterr, errno, "cannot create a directory in '%s': %s",
		                   tmp && *tmp ? tmp : "/tmp", strerror(errno));
		goto out;
	}
	have_tmp = true;
	d.ctx.tmpdir = tmpdir;

	/* The search, its first runs alongside the reference. */
	d.nitems = (size_t)tgvm_featureset_count(&res->candidates);
	d.item = calloc(d.nitems + 1, sizeof(*d.item));
	d.search = probe_search_new(d.nitems);
	if (!d.item || !d.search) {
		r = -ENOMEM;
		goto out;
	}
	{
		size_t i = 0;

		TGVM_FEATURESET_FOREACH(f, &res->candidates)
		d.item[i++] = f;
		/* What static analysis says is required goes first, alone. */
		if (res->have_scan)
			for (size_t j = 0; j < d.nitems; j++)
				if (tgvm_featureset_has(&res->scan_required, d.item[j]))
					probe_search_suspect(d.search, (uint32_t)j);
	}
	d.slots = jobs;
	d.ref_pending = true;
	for (unsigned i = 0; i < jobs; i++) {
		if (pthread_create(&th[i], NULL, worker, &d) != 0)
			break;
		started++;
	}
	if (started == 0) {
		r = tgvm_error_set(reterr, EAGAIN, "cannot start a thread");
		goto out;
	}

	/* The reference: every candidate present. */
	tgvm_featureset_clear(&none);
	rt0 = tgvm_now_ns();
	r = run_once(&d, &res->reference, &d.ref, reterr);
	if (r == 0 && d.ref.outcome == TGVM_PROBE_PASS && opt->check && !check_cmd(&d, &d.ref)) {
		d.ref.outcome = TGVM_PROBE_CHECK;
		snprintf(d.ref.detail, sizeof(d.ref.detail),
		         "the check command rejects the reference run");
	}
	pthread_mutex_lock(&d.lock);
	if (r == 0)
		r = record(&d, "reference", &none, &d.ref, false, tgvm_now_ns() - rt0);
	d.ref_pending = false;
	d.ref_failed = r < 0 || d.ref.outcome != TGVM_PROBE_PASS;
	pthread_cond_broadcast(&d.cond);
	pthread_mutex_unlock(&d.lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	if (r < 0)
		goto out;
	if (d.ref.outcome != TGVM_PROBE_PASS) {
		/* Say which untestable feature it died for, when SIGILL tells. */
		if (d.ref.sigill_feature >= 0)
			tgvm_featureset_add(&res->untestable, d.ref.sigill_feature);
		res->reference_ok = false;
		goto done;
	}
	res->reference_ok = true;
	if (d.error) {
		r = d.error;
		if (reterr && d.err.code)
			*reterr = d.err;
		goto out;
	}
	res->search_runs = probe_search_tests(d.search);
	{
		const uint32_t *found;
		size_t nf = probe_search_found(d.search, &found);

		tgvm_featureset_clear(&res->required);
		for (size_t i = 0; i < nf; i++)
			tgvm_featureset_add(&res->required, d.item[found[i]]);
	}
	r = prove_minimal(&d, jobs, reterr);
	if (r < 0)
		goto out;
done:
	if (res->have_scan)
		cross_check(res);
	res->wall_ns = tgvm_now_ns() - t0;
	*ret = res;
	res = NULL;
	r = 0;
out:
	if (have_tmp)
		rm_tmpdir(tmpdir);
	probe_obs_release(&d.ref);
	probe_search_free(d.search);
	free(d.item);
	free(d.ctx.append);
	free(argv);
	pthread_mutex_destroy(&d.lock);
	pthread_cond_destroy(&d.cond);
	tgvm_probe_result_free(res);
	return r;
}

void tgvm_probe_result_free(struct tgvm_probe_result *r)
{
	if (!r)
		return;
	free(r->run);
	free(r);
}

static json_t *set_json(const struct tgvm_featureset *s)
{
	json_t *a = json_array();

	TGVM_FEATURESET_FOREACH(f, s)
	json_array_append_new(a, json_string(tgvm_feature_name(f)));
	return a;
}

int tgvm_probe_result_json(const struct tgvm_probe_result *r, char **ret_json,
                           struct tgvm_error *reterr)
{
	json_t *root = json_object(), *runs = json_array();
	char *s;

	if (!root || !runs) {
		json_decref(root);
		json_decref(runs);
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	}
	json_object_set_new(root, "tool", json_string("tgvm-probe"));
	json_object_set_new(root, "version", json_integer(TGVM_PROBE_JSON_VERSION));
	json_object_set_new(root, "mode", json_string(r->mode == TGVM_PROBE_VM ? "vm" : "program"));
	json_object_set_new(root, "cpu_base", json_string(r->cpu_base));
	json_object_set_new(root, "workload", json_string(r->workload));
	if (r->mode == TGVM_PROBE_VM)
		json_object_set_new(root, "disk", r->disk[0] ? json_string(r->disk) : json_null());
	json_object_set_new(root, "reference_ok", json_boolean(r->reference_ok));
	json_object_set_new(root, "verified", json_boolean(r->verified));
	json_object_set_new(root, "required", set_json(&r->required));
	json_object_set_new(root, "minimal", json_boolean(r->minimal));
	json_object_set_new(root, "proven", set_json(&r->proven));
	json_object_set_new(root, "implied", set_json(&r->implied));
	json_object_set_new(root, "dropped", set_json(&r->dropped));
	json_object_set_new(root, "guarded", json_array());
	json_object_set_new(root, "untestable", set_json(&r->untestable));
	json_object_set_new(root, "candidates", set_json(&r->candidates));
	json_object_set_new(root, "fixed", set_json(&r->fixed));
	json_object_set_new(root, "runs", json_integer(r->runs));
	json_object_set_new(root, "search_runs", json_integer(r->search_runs));
	json_object_set_new(root, "minimal_runs", json_integer(r->minimal_runs));
	json_object_set_new(root, "hinted", json_integer(r->hinted));
	json_object_set_new(root, "wall_ms", json_real((double)r->wall_ns / 1e6));
	if (r->have_scan) {
		json_t *sc = json_object();

		json_object_set_new(sc, "required", set_json(&r->scan_required));
		json_object_set_new(sc, "guarded", set_json(&r->scan_guarded));
		json_object_set_new(sc, "false_positive", set_json(&r->false_positive));
		json_object_set_new(sc, "false_negative", set_json(&r->false_negative));
		json_object_set_new(sc, "untestable", set_json(&r->scan_untestable));
		json_object_set_new(root, "scan", sc);
		/* Required by the scan and beyond TCG: kept on the scan's word, never dropped. */
		json_object_set_new(root, "untestable_required", set_json(&r->scan_untestable));
	}
	for (size_t i = 0; i < r->nruns; i++) {
		const struct tgvm_probe_run_info *ri = &r->run[i];
		json_t *o = json_object();

		json_object_set_new(o, "phase", json_string(ri->phase));
		json_object_set_new(o, "removed", set_json(&ri->removed));
		json_object_set_new(o, "outcome",
		                    json_string(tgvm_probe_outcome_to_string(ri->outcome)));
		json_object_set_new(o, "status", json_integer(ri->status));
		json_object_set_new(o, "detail", json_string(ri->detail));
		if (ri->sigill_feature >= 0)
			json_object_set_new(o, "sigill_feature",
			                    json_string(tgvm_feature_name(ri->sigill_feature)));
		if (ri->fault[0])
			json_object_set_new(o, "fault", json_string(ri->fault));
		json_object_set_new(o, "hint", json_boolean(ri->hinted));
		if (ri->alone >= 0)
			json_object_set_new(o, "alone", json_string(tgvm_feature_name(ri->alone)));
		json_object_set_new(o, "ms", json_real((double)ri->ns / 1e6));
		json_array_append_new(runs, o);
	}
	json_object_set_new(root, "run_log", runs);
	s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	json_decref(root);
	if (!s)
		return tgvm_error_set(reterr, ENOMEM, "out of memory");
	*ret_json = s;
	return 0;
}
