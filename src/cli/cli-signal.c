// SPDX-License-Identifier: MIT
/*
 * Signals during a move: SIGINT, SIGTERM and SIGHUP only set a flag that the
 * migration engine reads at its next safe point (it cancels before the
 * switch and completes after it); a second signal cannot cut that short.
 * The environment's test settings for the engine are read here, once.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli.h"
#include "tgvm/migrate.h"

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	static const char first[] =
	    "\ntgvm: interrupted: settling the move (cancelled if the destination does not have "
	    "the VM yet, completed if it does); please wait\n";
	static const char again[] =
	    "\ntgvm: still settling the move; it ends with the VM running in exactly one place\n";
	ssize_t n;

	n = interrupted ? write(STDERR_FILENO, again, sizeof(again) - 1)
	                : write(STDERR_FILENO, first, sizeof(first) - 1);
	(void)n;
	if (!interrupted)
		interrupted = sig;
}

const volatile sig_atomic_t *cli_interrupt_install(void)
{
	static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal; /* no SA_RESTART: waits wake up and look at the flag */
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		sigaction(sigs[i], &sa, NULL);
	return &interrupted;
}

int cli_interrupt_signal(void)
{
	return interrupted;
}

void cli_migrate_test_env(struct migrate_opts *o)
{
	const char *stop = getenv("TGVM_TEST_STOP_AT"), *fault = getenv("TGVM_TEST_FAULT");

	for (int p = 0; stop && *stop && p < MIGRATE_PHASE__MAX; p++)
		if (!strcmp(stop, migrate_phase_to_string((enum migrate_phase)p)))
			o->test_stop_at = p;
	if (fault && *fault)
		o->test_fault = fault;
}
