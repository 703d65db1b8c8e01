// SPDX-License-Identifier: MIT
/* Unit tests of the CPU vocabulary: names, set algebra, closure, psABI levels. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "tgvm/cpu.h"

static struct tgvm_featureset set_of(const char *list)
{
	struct tgvm_featureset s;
	struct tgvm_error err = {0};

	assert_int_equal(tgvm_featureset_parse(list, &s, &err), 0);
	return s;
}

static void test_names_roundtrip(void **state)
{
	(void)state;
	for (int f = 0; f < TGVM_F__MAX; f++) {
		const struct tgvm_feature_info *fi = tgvm_feature_info(f);

		assert_non_null(fi->qemu_name);
		assert_int_equal(tgvm_feature_from_name(fi->qemu_name), f);
		if (fi->linux_name && *fi->linux_name)
			assert_int_equal(tgvm_feature_from_name(fi->linux_name), f);
	}
}

static void test_names_unique_bits(void **state)
{
	(void)state;
	/* No two features may claim the same register bit. */
	for (int a = 0; a < TGVM_F__MAX; a++)
		for (int b = a + 1; b < TGVM_F__MAX; b++) {
			const struct tgvm_feature_info *x = tgvm_feature_info(a),
			                               *y = tgvm_feature_info(b);

			if (x->leaf == y->leaf && x->subleaf == y->subleaf && x->reg == y->reg &&
			    x->bit == y->bit)
				fail_msg("%s and %s share a bit", x->qemu_name, y->qemu_name);
			if (!strcmp(x->qemu_name, y->qemu_name))
				fail_msg("duplicate name %s", x->qemu_name);
		}
}

static void test_aliases(void **state)
{
	(void)state;
	assert_int_equal(tgvm_feature_from_name("sse4_1"), TGVM_F_SSE4_1);
	assert_int_equal(tgvm_feature_from_name("SSE4-1"), TGVM_F_SSE4_1);
	assert_int_equal(tgvm_feature_from_name("lahf_lm"), TGVM_F_LAHF_LM);
	assert_int_equal(tgvm_feature_from_name("xd"), TGVM_F_NX);
	assert_int_equal(tgvm_feature_from_name("i64"), TGVM_F_LM);
	assert_int_equal(tgvm_feature_from_name("pclmuldq"), TGVM_F_PCLMULQDQ);
	assert_int_equal(tgvm_feature_from_name("avx512_vbmi2"), TGVM_F_AVX512VBMI2);
	assert_int_equal(tgvm_feature_from_name("sse3"), TGVM_F_PNI);
	assert_int_equal(tgvm_feature_from_name("lzcnt"), TGVM_F_ABM);
	assert_int_equal(tgvm_feature_from_name("nosuch"), -ENOENT);
	assert_int_equal(tgvm_feature_from_name(""), -ENOENT);
}

static void test_parse_errors(void **state)
{
	struct tgvm_featureset s = {{0}};
	struct tgvm_error err = {0};

	(void)state;
	assert_int_equal(tgvm_featureset_parse("avx2,avx3,bmi2", &s, &err), -ENOENT);
	assert_non_null(strstr(err.msg, "'avx3'"));
	assert_non_null(strstr(err.msg, "did you mean 'avx2'"));
	assert_int_equal(tgvm_featureset_parse("avx2 +bmi2,,", &s, &err), 0);
	assert_true(tgvm_featureset_has(&s, TGVM_F_AVX2));
	assert_true(tgvm_featureset_has(&s, TGVM_F_BMI2));
	assert_int_equal(tgvm_featureset_count(&s), 2);
	assert_int_equal(tgvm_featureset_parse("", &s, &err), 0);
	assert_true(tgvm_featureset_empty(&s));
	/* Nothing close: no suggestion invented. */
	assert_int_equal(tgvm_featureset_parse("qqqqqqqqqqqq", &s, &err), -ENOENT);
	assert_null(strstr(err.msg, "did you mean"));
}

static void test_algebra(void **state)
{
	struct tgvm_featureset a = set_of("avx2,bmi2,popcnt"), b = set_of("popcnt,aes");
	struct tgvm_featureset u = a, i = a, d = a;
	char *str;

	(void)state;
	tgvm_featureset_union(&u, &b);
	tgvm_featureset_intersect(&i, &b);
	tgvm_featureset_minus(&d, &b);
	assert_int_equal(tgvm_featureset_count(&u), 4);
	assert_true(tgvm_featureset_equal(&i, &(struct tgvm_featureset){0}) == false);
	assert_int_equal(tgvm_featureset_count(&i), 1);
	assert_true(tgvm_featureset_has(&i, TGVM_F_POPCNT));
	assert_int_equal(tgvm_featureset_count(&d), 2);
	assert_false(tgvm_featureset_has(&d, TGVM_F_POPCNT));
	assert_true(tgvm_featureset_subset(&i, &a));
	assert_true(tgvm_featureset_subset(&i, &b));
	assert_false(tgvm_featureset_subset(&a, &b));
	str = tgvm_featureset_to_string(&u, ",");
	assert_string_equal(str, "popcnt,aes,avx2,bmi2");
	free(str);
	/* The last feature in the table is reachable by iteration. */
	struct tgvm_featureset last = {{0}};
	tgvm_featureset_add(&last, TGVM_F__MAX - 1);
	assert_int_equal(tgvm_featureset_next(&last, 0), TGVM_F__MAX - 1);
	assert_int_equal(tgvm_featureset_next(&last, TGVM_F__MAX), -1);
}

static void test_closure(void **state)
{
	struct tgvm_featureset s = set_of("avx2");

	(void)state;
	tgvm_featureset_close(&s);
	assert_true(tgvm_featureset_has(&s, TGVM_F_AVX));
	assert_true(tgvm_featureset_has(&s, TGVM_F_XSAVE));
	assert_false(tgvm_featureset_has(&s, TGVM_F_AVX512F));
	/* Companions software relies on (glibc's AVX2 code uses BMI1; Linux needs xsaveopt). */
	assert_true(tgvm_featureset_has(&s, TGVM_F_BMI1));
	assert_true(tgvm_featureset_has(&s, TGVM_F_XSAVEOPT));

	s = set_of("avx512vbmi");
	tgvm_featureset_close(&s);
	assert_true(tgvm_featureset_has(&s, TGVM_F_AVX512BW));
	assert_true(tgvm_featureset_has(&s, TGVM_F_AVX512F));
	assert_true(tgvm_featureset_has(&s, TGVM_F_AVX));

	/* Every AVX-512 extension needs AVX512F. */
	for (int f = 0; f < TGVM_F__MAX; f++) {
		const char *n = tgvm_feature_name(f);

		if (!strncmp(n, "avx512", 6) && f != TGVM_F_AVX512F) {
			struct tgvm_featureset one = {{0}};

			tgvm_featureset_add(&one, f);
			tgvm_featureset_close(&one);
			if (!tgvm_featureset_has(&one, TGVM_F_AVX512F))
				fail_msg("%s does not need avx512f", n);
		}
	}

	/* Taking AVX away takes AVX2 and AVX-512 away too. */
	s = set_of("xsave,xsaveopt,bmi1,avx,avx2,fma,avx512f,avx512bw,popcnt");
	tgvm_featureset_del(&s, TGVM_F_AVX);
	tgvm_featureset_close_down(&s);
	assert_false(tgvm_featureset_has(&s, TGVM_F_AVX2));
	assert_false(tgvm_featureset_has(&s, TGVM_F_FMA));
	assert_false(tgvm_featureset_has(&s, TGVM_F_AVX512BW));
	assert_true(tgvm_featureset_has(&s, TGVM_F_POPCNT));
	assert_true(tgvm_featureset_has(&s, TGVM_F_XSAVE));
}

static void test_psabi(void **state)
{
	struct tgvm_featureset v1, v2, v3, v4, s;

	(void)state;
	tgvm_psabi_set(TGVM_PSABI_V1, &v1);
	tgvm_psabi_set(TGVM_PSABI_V2, &v2);
	tgvm_psabi_set(TGVM_PSABI_V3, &v3);
	tgvm_psabi_set(TGVM_PSABI_V4, &v4);
	assert_true(tgvm_featureset_subset(&v1, &v2));
	assert_true(tgvm_featureset_subset(&v3, &v4));
	assert_int_equal(tgvm_psabi_supported(&v3), TGVM_PSABI_V3);
	assert_int_equal(tgvm_psabi_required(&v3), TGVM_PSABI_V3);
	s = set_of("popcnt");
	assert_int_equal(tgvm_psabi_required(&s), TGVM_PSABI_V2);
	assert_int_equal(tgvm_psabi_supported(&s), TGVM_PSABI_NONE);
	s = set_of("aes,sha-ni");
	assert_int_equal(tgvm_psabi_required(&s), TGVM_PSABI_V1);
	s = set_of("avx512f");
	assert_int_equal(tgvm_psabi_required(&s), TGVM_PSABI_V4);
	s = v2;
	tgvm_featureset_add(&s, TGVM_F_AVX2);
	assert_int_equal(tgvm_psabi_supported(&s), TGVM_PSABI_V2);
	assert_int_equal(tgvm_psabi_from_string("x86-64-v3"), TGVM_PSABI_V3);
	assert_int_equal(tgvm_psabi_from_string("v4"), TGVM_PSABI_V4);
	assert_int_equal(tgvm_psabi_from_string("v5"), -EINVAL);
	assert_string_equal(tgvm_psabi_to_string(TGVM_PSABI_V2), "x86-64-v2");
}

static void test_baseline(void **state)
{
	struct tgvm_featureset b, v1, closed;

	(void)state;
	tgvm_linux_baseline(&b);
	tgvm_psabi_set(TGVM_PSABI_V1, &v1);
	assert_true(tgvm_featureset_subset(&v1, &b));
	assert_true(tgvm_featureset_has(&b, TGVM_F_APIC));
	assert_true(tgvm_featureset_has(&b, TGVM_F_NX));
	assert_false(tgvm_featureset_has(&b, TGVM_F_POPCNT));
	closed = b;
	tgvm_featureset_close(&closed);
	assert_true(tgvm_featureset_equal(&closed, &b));
}

static void test_vendor(void **state)
{
	(void)state;
	assert_int_equal(tgvm_vendor_from_string("GenuineIntel"), TGVM_VENDOR_INTEL);
	assert_int_equal(tgvm_vendor_from_string("amd"), TGVM_VENDOR_AMD);
	assert_int_equal(tgvm_vendor_from_string("AuthenticAMD"), TGVM_VENDOR_AMD);
	assert_int_equal(tgvm_vendor_from_string("HygonGenuine"), TGVM_VENDOR_OTHER);
	assert_int_equal(tgvm_vendor_from_string("arm"), -EINVAL);
	assert_string_equal(tgvm_vendor_cpuid_string(TGVM_VENDOR_INTEL), "GenuineIntel");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_names_roundtrip), cmocka_unit_test(test_names_unique_bits),
	    cmocka_unit_test(test_aliases),         cmocka_unit_test(test_parse_errors),
	    cmocka_unit_test(test_algebra),         cmocka_unit_test(test_closure),
	    cmocka_unit_test(test_psabi),           cmocka_unit_test(test_baseline),
	    cmocka_unit_test(test_vendor),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
