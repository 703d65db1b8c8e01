// SPDX-License-Identifier: MIT
/*
 * tgvm scan speed: scans a tree (default /usr) with tgvm_scan_run and, in
 * the same run, sweeps the same files' executable sections with a plain
 * Zydis linear decode (ZydisDecoderDecodeFull, instruction and operands, as
 * a naive ISA-set lister does). Both use every online core (files handed out
 * from a shared counter); both map files rather than read them. Throughput
 * is MB of executable section bytes per second for both, so the ratio is
 * like for like. A file with several names (hard links) is swept once, as
 * tgvm analyses it once: its bytes count once on both sides.
 * Usage: bench-scan [DIR] [JOBS]
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <Zydis/Zydis.h>

#include "tgvm/scan.h"

#define MAX_FILES (1u << 20)

struct file {
	char *path;
	dev_t dev;
	ino_t ino;
};

static struct file *files;
static size_t nfiles, nnames;
static atomic_size_t next_file;

static double clock_s(clockid_t c)
{
	struct timespec ts;

	clock_gettime(c, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}
static double now(void)
{
	return clock_s(CLOCK_MONOTONIC);
}
static double cpu(void)
{
	return clock_s(CLOCK_PROCESS_CPUTIME_ID);
}

static double peak_rss_mb(void)
{
	struct rusage ru;

	return getrusage(RUSAGE_SELF, &ru) == 0 ? (double)ru.ru_maxrss / 1024 : 0;
}

static void walk(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	if (!d)
		return;
	while ((de = readdir(d)) && nfiles < MAX_FILES) {
		char path[4096];
		struct stat st;

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (snprintf(path, sizeof(path), "%s/%s", dir, de->d_name) >= (int)sizeof(path))
			continue;
		if (lstat(path, &st) < 0)
			continue;
		if (S_ISDIR(st.st_mode)) {
			walk(path);
		} else if (S_ISREG(st.st_mode) && st.st_size >= 64) {
			struct file *nv =
			    nfiles % 1024 ? files : realloc(files, (nfiles + 1024) * sizeof(*nv));

			if (!nv)
				break;
			files = nv;
			files[nfiles] = (struct file){strdup(path), st.st_dev, st.st_ino};
			if (files[nfiles].path)
				nfiles++;
		}
	}
	closedir(d);
}

static int cmp_inode(const void *x, const void *y)
{
	const struct file *a = x, *b = y;

	if (a->dev != b->dev)
		return a->dev < b->dev ? -1 : 1;
	if (a->ino != b->ino)
		return a->ino < b->ino ? -1 : 1;
	return strcmp(a->path, b->path);
}

/* Keep one name per (st_dev, st_ino): the others are hard links. */
static void drop_links(void)
{
	size_t k = 0;

	nnames = nfiles;
	if (nfiles > 1)
		qsort(files, nfiles, sizeof(*files), cmp_inode);
	for (size_t i = 0; i < nfiles; i++) {
		if (k && files[k - 1].dev == files[i].dev && files[k - 1].ino == files[i].ino) {
			free(files[i].path);
			continue;
		}
		files[k++] = files[i];
	}
	nfiles = k;
}

struct sweep {
	uint64_t bytes, insns, elf;
};

/* Linear decode of every SHF_EXECINSTR section of one x86-64 ELF file. */
static void sweep_file(const char *path, ZydisDecoder *dec, struct sweep *out)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	uint8_t *map;
	Elf *elf;
	GElf_Ehdr eh;
	Elf_Scn *scn = NULL;

	if (fd < 0)
		return;
	if (fstat(fd, &st) < 0 || st.st_size < 64) {
		close(fd);
		return;
	}
	map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return;
	if (memcmp(map, ELFMAG, SELFMAG) || !(elf = elf_memory((char *)map, (size_t)st.st_size))) {
		munmap(map, (size_t)st.st_size);
		return;
	}
	if (gelf_getehdr(elf, &eh) && eh.e_machine == EM_X86_64 &&
	    (eh.e_type == ET_EXEC || eh.e_type == ET_DYN)) {
		out->elf++;
		while ((scn = elf_nextscn(elf, scn))) {
			GElf_Shdr sh;

			if (!gelf_getshdr(scn, &sh) || sh.sh_type != SHT_PROGBITS ||
			    !(sh.sh_flags & SHF_EXECINSTR) || sh.sh_offset > (uint64_t)st.st_size ||
			    sh.sh_size > (uint64_t)st.st_size - sh.sh_offset)
				continue;
			for (uint64_t o = 0; o < sh.sh_size;) {
				ZydisDecodedInstruction in;
				ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];

				if (ZYAN_SUCCESS(ZydisDecoderDecodeFull(
				        dec, map + sh.sh_offset + o, sh.sh_size - o, &in, ops))) {
					o += in.length;
					out->insns++;
				} else {
					o++;
				}
			}
			out->bytes += sh.sh_size;
		}
	}
	elf_end(elf);
	munmap(map, (size_t)st.st_size);
}

static void *sweep_worker(void *arg)
{
	struct sweep *s = arg;
	ZydisDecoder dec;

	ZydisDecoderInit(&dec, ZYDIS_MACHINE_MODE_LONG_64, ZYDIS_STACK_WIDTH_64);
	for (;;) {
		size_t i = atomic_fetch_add(&next_file, 1);

		if (i >= nfiles)
			break;
		sweep_file(files[i].path, &dec, s);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *dir = argc > 1 ? argv[1] : "/usr";
	long jobs = argc > 2 ? strtol(argv[2], NULL, 10) : sysconf(_SC_NPROCESSORS_ONLN);
	struct tgvm_scan_options opts = {0};
	struct tgvm_scan_report *rep = NULL;
	struct tgvm_error err = {0};
	const struct tgvm_scan_totals *t;
	struct sweep *sw;
	pthread_t *th;
	uint64_t bytes = 0, insns = 0, elfs = 0;
	double t0, c0, t_sweep, t_scan, c_sweep, c_scan, rss_sweep;
	const char *paths[] = {dir};

	if (jobs < 1 || jobs > 256)
		jobs = 1;
	elf_version(EV_CURRENT);
	walk(dir);
	drop_links();
	sw = calloc((size_t)jobs, sizeof(*sw));
	th = calloc((size_t)jobs, sizeof(*th));
	if (!sw || !th || !nfiles) {
		fprintf(stderr, "bench-scan: no files under '%s'\n", dir);
		return 1;
	}

	/* the baseline first, then tgvm: both see a warm page cache (a
	 * throw-away sweep warms it) */
	atomic_store(&next_file, 0);
	for (long j = 0; j < jobs; j++)
		pthread_create(&th[j], NULL, sweep_worker, &sw[j]);
	for (long j = 0; j < jobs; j++)
		pthread_join(th[j], NULL);
	memset(sw, 0, (size_t)jobs * sizeof(*sw));

	atomic_store(&next_file, 0);
	t0 = now();
	c0 = cpu();
	for (long j = 0; j < jobs; j++)
		pthread_create(&th[j], NULL, sweep_worker, &sw[j]);
	for (long j = 0; j < jobs; j++) {
		pthread_join(th[j], NULL);
		bytes += sw[j].bytes;
		insns += sw[j].insns;
		elfs += sw[j].elf;
	}
	t_sweep = now() - t0;
	c_sweep = cpu() - c0;
	rss_sweep = peak_rss_mb();

	opts.jobs = (unsigned)jobs;
	t0 = now();
	c0 = cpu();
	if (tgvm_scan_run(paths, 1, &opts, &rep, &err) < 0) {
		fprintf(stderr, "bench-scan: %s\n", err.msg);
		return 1;
	}
	t_scan = now() - t0;
	c_scan = cpu() - c0;
	t = tgvm_scan_report_totals(rep);

	printf("tree:            %s (%zu names, %zu files, %llu x86-64 ELF, %.1f MB in "
	       "executable sections)\n",
	       dir, nnames, nfiles, (unsigned long long)elfs, (double)bytes / 1e6);
	printf("tgvm saw:        %llu names, %llu of them hard links to a file analysed once\n",
	       (unsigned long long)t->files, (unsigned long long)t->hardlinks);
	printf("threads:         %ld\n", jobs);
	/* cores busy = CPU / wall: below the thread count when the work does not
	 * spread, or when other work on the machine takes the cores */
	printf("zydis linear:    %.2f s wall, %.2f s CPU (%.2f cores busy): %.1f MB/s, "
	       "%llu instructions\n",
	       t_sweep, c_sweep, c_sweep / t_sweep, (double)bytes / 1e6 / t_sweep,
	       (unsigned long long)insns);
	printf("tgvm scan:       %.2f s wall, %.2f s CPU (%.2f cores busy): %.1f MB/s (%.1f MB "
	       "decoded as code, %llu instructions, %llu files with errors)\n",
	       t_scan, c_scan, c_scan / t_scan, (double)bytes / 1e6 / t_scan,
	       (double)t->code_bytes / 1e6, (unsigned long long)t->insns,
	       (unsigned long long)t->errors);
	printf("ratio:           %.2f of the plain decode's throughput (goal >= 0.50)\n",
	       t_sweep / t_scan);
	printf("ratio (CPU):     %.2f (per CPU second; the wall figure also counts how "
	       "well the cores are kept busy and what else the machine runs)\n",
	       c_sweep / c_scan);
	printf("required:        psABI %s\n", tgvm_psabi_to_string(t->psabi));
	/* a high-water mark: the sweep's, then raised only if tgvm goes higher;
	 * mapped file pages touched count too */
	printf("peak RSS:        %.0f MB after the sweep, %.0f MB after tgvm\n", rss_sweep,
	       peak_rss_mb());
	tgvm_scan_report_free(rep);
	for (size_t i = 0; i < nfiles; i++)
		free(files[i].path);
	free(files);
	free(sw);
	free(th);
	return 0;
}
