// SPDX-License-Identifier: MIT
/*
 * Reads the CPU model database from the installed QEMU over QMP and caches it
 * per QEMU version: every x86 model (versioned ones included), expanded by
 * TCG in full, with what TCG cannot provide.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tgvm/model.h"
#include "tgvm/qmp-monitor.h"
#include "tgvm/vm.h"
#include "util/proc.h"
#include "util/util.h"

#define QMP_TIMEOUT_MS 20000
#define CACHE_MAX      (16u << 20)

/* "QEMU emulator version 7.2.22 (Debian ...)" -> "7.2.22"; -ENOENT when absent. */
static int qemu_version(char *buf, size_t size, int *major, struct tgvm_error *reterr)
{
	char *argv[] = {(char *)vm_qemu_binary(), "--version", NULL};
	char *out = NULL;
	const char *p;
	int status, r;

	r = tgvm_run_capture(argv, 4096, 10000, &out, &status, reterr);
	if (r == -ENOENT)
		return tgvm_error_set(reterr, ENOPKG,
		                      "QEMU is not installed ('%s' not found); run 'make setup' "
		                      "or install the qemu-system-x86 package",
		                      argv[0]);
	if (r < 0)
		return r;
	p = strstr(out, "version ");
	if (!p || !WIFEXITED(status) || WEXITSTATUS(status)) {
		free(out);
		return tgvm_error_set(reterr, EINVAL, "'%s --version' did not print a QEMU version",
		                      argv[0]);
	}
	p += 8;
	size_t n = strspn(p, "0123456789.");
	snprintf(buf, size, "%.*s", (int)TGVM_MIN(n, size - 1), p);
	*major = (int)strtol(buf, NULL, 10);
	free(out);
	return 0;
}

/* Features set in @props into @ret; every feature property QEMU has (on or
 * off) into @known: that is what this QEMU can switch. */
static void features_from_props(json_t *props, struct tgvm_featureset *ret,
                                struct tgvm_featureset *known)
{
	const char *key;
	json_t *v;

	tgvm_featureset_clear(ret);
	json_object_foreach(props, key, v)
	{
		int f;

		if (!json_is_boolean(v))
			continue;
		f = tgvm_feature_from_name(key);
		if (f < 0)
			continue;
		tgvm_featureset_add(known, f);
		if (json_is_true(v))
			tgvm_featureset_add(ret, f);
	}
}

static int expand_model(struct qmp_conn *c, const char *name, struct tgvm_cpu_model *m,
                        struct tgvm_featureset *known, struct tgvm_error *reterr)
{
	struct tgvm_qmp_cpu_model x = {0};
	json_t *props;
	int r;

	r = tgvm_qmp_query_cpu_model_expansion(c, TGVM_QMP_CPU_EXPANSION_FULL, name, NULL,
	                                       QMP_TIMEOUT_MS, &x, reterr);
	if (r < 0)
		return r;
	props = x.props;
	if (json_object_size(props) == 0) {
		tgvm_qmp_cpu_model_release(&x);
		return tgvm_error_set(reterr, EPROTO, "QEMU's expansion of '%s' has no properties",
		                      name);
	}
	features_from_props(props, &m->features, known);
	m->family = (int)json_number_value(json_object_get(props, "family"));
	m->model = (int)json_number_value(json_object_get(props, "model"));
	m->stepping = (int)json_number_value(json_object_get(props, "stepping"));
	snprintf(m->model_id, sizeof(m->model_id), "%s",
	         json_string_value(json_object_get(props, "model-id")) ?: "");
	int v = tgvm_vendor_from_string(json_string_value(json_object_get(props, "vendor")));
	m->vendor = v < 0 ? TGVM_VENDOR_OTHER : v;
	tgvm_qmp_cpu_model_release(&x);
	return 0;
}

static int query_qemu(struct tgvm_modeldb **ret, const char *version, struct tgvm_error *reterr)
{
	struct tgvm_modeldb *db = NULL;
	struct qmp_conn *c = NULL;
	struct tgvm_qmp_cpu_def *defs = NULL;
	int sv[2] = {-1, -1}, r, status;
	size_t i, ndefs = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return tgvm_error_set(reterr, errno, "cannot create a socket pair: %s",
		                      strerror(errno));
	pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return tgvm_error_set(reterr, errno, "cannot fork: %s", strerror(errno));
	}
	if (pid == 0) {
		int devnull = open("/dev/null", O_WRONLY);

		dup2(sv[1], 0);
		dup2(sv[1], 1);
		if (devnull >= 0)
			dup2(devnull, 2);
		execlp(vm_qemu_binary(), vm_qemu_binary(), "-machine", "none", "-accel", "tcg",
		       "-nodefaults", "-display", "none", "-qmp", "stdio", (char *)NULL);
		_exit(127);
	}
	close(sv[1]);
	r = qmp_conn_open_fd(sv[0], QMP_TIMEOUT_MS, &c, reterr);
	if (r < 0) {
		tgvm_error_prefix(reterr, "cannot talk to '%s'", vm_qemu_binary());
		goto out;
	}
	r = tgvm_qmp_query_cpu_definitions(c, QMP_TIMEOUT_MS, &defs, &ndefs, reterr);
	if (r < 0)
		goto out;
	if (ndefs > TGVM_MODELDB_MAX) {
		r = tgvm_error_set(reterr, EPROTO, "QEMU lists %zu CPU models, more than %d", ndefs,
		                   (int)TGVM_MODELDB_MAX);
		goto out;
	}
	db = tgvm_modeldb_new();
	if (!db) {
		r = tgvm_error_set(reterr, ENOMEM, "out of memory");
		goto out;
	}
	snprintf(db->qemu_version, sizeof(db->qemu_version), "%s", version);
	for (i = 0; i < ndefs; i++) {
		const struct tgvm_qmp_cpu_def *d = &defs[i];
		const char *name = d->name;
		struct tgvm_cpu_model m;

		if (strlen(name) >= sizeof(m.name))
			continue;
		memset(&m, 0, sizeof(m));
		snprintf(m.name, sizeof(m.name), "%.*s", (int)sizeof(m.name) - 1, name);
		snprintf(m.alias_of, sizeof(m.alias_of), "%.*s", (int)sizeof(m.alias_of) - 1,
		         d->alias_of);
		m.migration_safe = d->migration_safe;
		m.deprecated = d->deprecated;
		for (size_t k = 0; k < d->n_unavailable; k++) {
			int f = tgvm_feature_from_name(d->unavailable_features[k]);

			if (f >= 0)
				tgvm_featureset_add(&m.tcg_unavailable, f);
			else
				m.tcg_unnamed = true; /* no -flag of ours can take it away */
		}
		if (!strcmp(name, "host"))
			continue; /* needs KVM; says nothing about models */
		r = expand_model(c, name, &m, &db->settable, reterr);
		if (r < 0)
			goto out;
		if (!strcmp(name, "max")) {
			/* 'max' under TCG is what TCG can give. */
			db->tcg_max = m.features;
			tgvm_featureset_minus(&db->tcg_max, &m.tcg_unavailable);
		}
		r = tgvm_modeldb_add(db, &m);
		if (r < 0 && r != -EEXIST) {
			r = tgvm_error_set(reterr, -r, "cannot add CPU model '%s'", name);
			goto out;
		}
		r = 0;
	}
	*ret = db;
	db = NULL;
out:
	if (c) {
		tgvm_qmp_quit(c, 2000, NULL);
		qmp_conn_free(c);
	} else {
		close(sv[0]);
	}
	tgvm_qmp_cpu_defs_free(defs, ndefs);
	tgvm_modeldb_free(db);
	for (int t = 0; t < 50 && waitpid(pid, &status, WNOHANG) == 0; t++)
		usleep(20000);
	if (waitpid(pid, &status, WNOHANG) == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	return r;
}

int tgvm_modeldb_load_default(struct tgvm_modeldb **ret, struct tgvm_error *reterr)
{
	char version[32], dir[PATH_MAX], path[PATH_MAX + 64];
	struct tgvm_modeldb *db = NULL;
	json_error_t jerr;
	char *text = NULL;
	json_t *j = NULL;
	int major = 0, r;

	r = qemu_version(version, sizeof(version), &major, reterr);
	if (r < 0)
		return r;
	if (major < 4)
		return tgvm_error_set(reterr, ENOPKG,
		                      "QEMU %s is too old: tgvm needs QEMU 4.0 or newer "
		                      "(versioned CPU models)",
		                      version);
	if (tgvm_cache_dir(dir, sizeof(dir)) < 0)
		return tgvm_error_set(reterr, ENAMETOOLONG, "cache directory path is too long");
	snprintf(path, sizeof(path), "%s/qemu-cpu-models-%s-f%d.json", dir, version,
	         TGVM_MODELDB_FORMAT);

	if (tgvm_file_read(path, CACHE_MAX, &text, NULL, NULL) == 0) {
		j = json_loads(text, 0, &jerr);
		free(text);
		if (j && tgvm_modeldb_from_json(j, &db, NULL) == 0 &&
		    !strcmp(db->qemu_version, version)) {
			json_decref(j);
			*ret = db;
			return 0;
		}
		/* A stale or damaged cache is rebuilt, not trusted. */
		json_decref(j);
		tgvm_modeldb_free(db);
		db = NULL;
	}
	r = query_qemu(&db, version, reterr);
	if (r < 0)
		return r;
	j = tgvm_modeldb_to_json(db);
	text = j ? json_dumps(j, JSON_INDENT(1) | JSON_SORT_KEYS) : NULL;
	/* Caching is best effort: a read-only home still gets an answer. */
	if (text && tgvm_mkdir_p(dir, NULL) == 0)
		tgvm_file_write(path, text, strlen(text), NULL);
	free(text);
	json_decref(j);
	*ret = db;
	return 0;
}
