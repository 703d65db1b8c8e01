// SPDX-License-Identifier: MIT
/*
 * Every Zydis ISA set mapped to the CPUID features (of tgvm/features.def) an
 * instruction of that set needs, plus the rules a set alone cannot express:
 * EVEX 128/256-bit forms need avx512vl, some mnemonics need their own bit.
 * A unit test fails when a Zydis ISA set has no entry here.
 */
#include "scan/scan-int.h"

struct isa_entry {
	bool mapped;
	uint8_t n;
	enum tgvm_feature f[3];
};

#define F(x) TGVM_F_##x
#define NONE                                                                                       \
	{                                                                                          \
		true, 0,                                                                           \
		{                                                                                  \
			0                                                                          \
		}                                                                                  \
	}
#define M1(a)                                                                                      \
	{                                                                                          \
		true, 1,                                                                           \
		{                                                                                  \
			F(a)                                                                       \
		}                                                                                  \
	}
#define M2(a, b)                                                                                   \
	{                                                                                          \
		true, 2,                                                                           \
		{                                                                                  \
			F(a), F(b)                                                                 \
		}                                                                                  \
	}
#define M3(a, b, c)                                                                                \
	{                                                                                          \
		true, 3,                                                                           \
		{                                                                                  \
			F(a), F(b), F(c)                                                           \
		}                                                                                  \
	}
#define VL(a) M3(a, AVX512VL, AVX512F)
#define VL2(a, b)                                                                                  \
	{                                                                                          \
		true, 3,                                                                           \
		{                                                                                  \
			F(a), F(b), F(AVX512VL)                                                    \
		}                                                                                  \
	}

static const struct isa_entry isa_map[ZYDIS_ISA_SET_MAX_VALUE + 1] = {
    /* The 8086..Pentium Pro base and long mode: every x86-64 CPU has them.
     * Mnemonics that need their own bit (cmpxchg8b, rdtsc, lahf...) are in
     * mnemonic_rule() below. */
    [ZYDIS_ISA_SET_I86] = NONE,
    [ZYDIS_ISA_SET_I186] = NONE,
    [ZYDIS_ISA_SET_I286PROTECTED] = NONE,
    [ZYDIS_ISA_SET_I286REAL] = NONE,
    [ZYDIS_ISA_SET_I386] = NONE,
    [ZYDIS_ISA_SET_I486] = NONE,
    [ZYDIS_ISA_SET_I486REAL] = NONE,
    [ZYDIS_ISA_SET_PENTIUMREAL] = NONE, /* rdtsc, cmpxchg8b: mnemonic_rule() */
    [ZYDIS_ISA_SET_PPRO] = NONE,        /* ud2, fcomi, sysenter */
    [ZYDIS_ISA_SET_LONGMODE] = M1(LM),
    [ZYDIS_ISA_SET_RDPMC] = NONE, /* allowed by CR4.PCE, not by CPUID */
    [ZYDIS_ISA_SET_PAUSE] = NONE, /* rep nop: runs everywhere */
    [ZYDIS_ISA_SET_FAT_NOP] = NONE,
    /* Hints in NOP space: a CPU without the feature executes them as NOPs. */
    [ZYDIS_ISA_SET_PREFETCH_NOP] = NONE,
    [ZYDIS_ISA_SET_MPX] = NONE,
    [ZYDIS_ISA_SET_CLDEMOTE] = NONE,
    [ZYDIS_ISA_SET_CET] = NONE, /* endbr64, rdssp: NOPs; the rest by mnemonic_rule() */
    [ZYDIS_ISA_SET_X87] = M1(FPU),
    [ZYDIS_ISA_SET_FCMOV] = M2(FPU, CMOV),
    [ZYDIS_ISA_SET_CMOV] = M1(CMOV),
    [ZYDIS_ISA_SET_PENTIUMMMX] = M1(MMX),
    [ZYDIS_ISA_SET_AMD3DNOW] = M1(3DNOW),
    [ZYDIS_ISA_SET_AMD] = M1(3DNOWEXT), /* AMD's MMX extensions (empty in 64-bit mode) */
    [ZYDIS_ISA_SET_FXSAVE] = M1(FXSR),
    [ZYDIS_ISA_SET_FXSAVE64] = M1(FXSR),
    [ZYDIS_ISA_SET_SSE] = M1(SSE),
    [ZYDIS_ISA_SET_SSEMXCSR] = M1(SSE),
    [ZYDIS_ISA_SET_SSE_PREFETCH] = M1(SSE),
    [ZYDIS_ISA_SET_SSE2] = M1(SSE2),
    [ZYDIS_ISA_SET_SSE2MMX] = M2(SSE2, MMX),
    [ZYDIS_ISA_SET_SSE3] = M1(PNI),
    [ZYDIS_ISA_SET_SSE3X87] = M2(PNI, FPU),
    [ZYDIS_ISA_SET_SSSE3] = M1(SSSE3),
    [ZYDIS_ISA_SET_SSSE3MMX] = M2(SSSE3, MMX),
    [ZYDIS_ISA_SET_SSE4] = M1(SSE4_1),
    [ZYDIS_ISA_SET_SSE42] = M1(SSE4_2),
    [ZYDIS_ISA_SET_SSE4A] = M1(SSE4A),
    [ZYDIS_ISA_SET_POPCNT] = M1(POPCNT),
    [ZYDIS_ISA_SET_LZCNT] = M1(ABM),
    [ZYDIS_ISA_SET_CMPXCHG16B] = M1(CX16),
    [ZYDIS_ISA_SET_LAHF] = M1(LAHF_LM),
    [ZYDIS_ISA_SET_MOVBE] = M1(MOVBE),
    [ZYDIS_ISA_SET_CLFSH] = M1(CLFLUSH),
    [ZYDIS_ISA_SET_CLFLUSHOPT] = M1(CLFLUSHOPT),
    [ZYDIS_ISA_SET_CLWB] = M1(CLWB),
    [ZYDIS_ISA_SET_CLZERO] = M1(CLZERO),
    [ZYDIS_ISA_SET_MONITOR] = M1(MONITOR),
    [ZYDIS_ISA_SET_MONITORX] = M1(MONITORX),
    [ZYDIS_ISA_SET_MCOMMIT] = M1(MCOMMIT),
    [ZYDIS_ISA_SET_RDTSCP] = M1(RDTSCP),
    [ZYDIS_ISA_SET_RDPID] = M1(RDPID),
    [ZYDIS_ISA_SET_RDPRU] = M1(RDPRU),
    [ZYDIS_ISA_SET_RDRAND] = M1(RDRAND),
    [ZYDIS_ISA_SET_RDSEED] = M1(RDSEED),
    [ZYDIS_ISA_SET_RDWRFSGS] = M1(FSGSBASE),
    [ZYDIS_ISA_SET_XSAVE] = M1(XSAVE),
    [ZYDIS_ISA_SET_XSAVEC] = M2(XSAVEC, XSAVE),
    [ZYDIS_ISA_SET_XSAVEOPT] = M2(XSAVEOPT, XSAVE),
    [ZYDIS_ISA_SET_XSAVES] = M2(XSAVES, XSAVE),
    [ZYDIS_ISA_SET_BMI1] = M1(BMI1),
    [ZYDIS_ISA_SET_BMI2] = M1(BMI2),
    [ZYDIS_ISA_SET_ADOX_ADCX] = M1(ADX),
    [ZYDIS_ISA_SET_TBM] = M1(TBM),
    [ZYDIS_ISA_SET_LWP] = M1(LWP),
    [ZYDIS_ISA_SET_AES] = M1(AES),
    [ZYDIS_ISA_SET_PCLMULQDQ] = M1(PCLMULQDQ),
    [ZYDIS_ISA_SET_SHA] = M1(SHA_NI),
    [ZYDIS_ISA_SET_GFNI] = M1(GFNI),
    [ZYDIS_ISA_SET_RTM] = M1(RTM),
    [ZYDIS_ISA_SET_TSX_LDTRK] = M1(TSX_LDTRK),
    [ZYDIS_ISA_SET_SERIALIZE] = M1(SERIALIZE),
    [ZYDIS_ISA_SET_WAITPKG] = M1(WAITPKG),
    [ZYDIS_ISA_SET_UINTR] = M1(UINTR),
    [ZYDIS_ISA_SET_ENQCMD] = M1(ENQCMD),
    [ZYDIS_ISA_SET_MOVDIR] = M1(MOVDIRI), /* movdir64b: mnemonic_rule() */
    [ZYDIS_ISA_SET_PKU] = M1(PKU),
    [ZYDIS_ISA_SET_PT] = M1(PTWRITE),
    [ZYDIS_ISA_SET_HRESET] = M1(HRESET),
    [ZYDIS_ISA_SET_KEYLOCKER] = M1(KEYLOCKER),
    [ZYDIS_ISA_SET_KEYLOCKER_WIDE] = M1(KEYLOCKER),
    [ZYDIS_ISA_SET_PREFETCHWT1] = M1(PREFETCHWT1),
    [ZYDIS_ISA_SET_SMAP] = M1(SMAP),
    [ZYDIS_ISA_SET_INVPCID] = M1(INVPCID),
    [ZYDIS_ISA_SET_PCONFIG] = M1(PCONFIG),
    [ZYDIS_ISA_SET_SGX] = M1(SGX),
    [ZYDIS_ISA_SET_SGX_ENCLV] = M1(SGX),
    [ZYDIS_ISA_SET_SMX] = M1(SMX),
    [ZYDIS_ISA_SET_VTX] = M1(VMX),
    [ZYDIS_ISA_SET_VMFUNC] = M1(VMX),
    [ZYDIS_ISA_SET_SVM] = M1(SVM),
    [ZYDIS_ISA_SET_SNP] = M1(SEV_SNP),
    [ZYDIS_ISA_SET_AMD_INVLPGB] = M1(INVLPGB),
    /* TDX guest/host calls: no CPUID bit a VM model can present. */
    [ZYDIS_ISA_SET_TDX] = NONE,
    [ZYDIS_ISA_SET_PADLOCK_ACE] = M1(XCRYPT),
    [ZYDIS_ISA_SET_PADLOCK_PHE] = M1(PHE),
    [ZYDIS_ISA_SET_PADLOCK_PMM] = M1(PMM),
    [ZYDIS_ISA_SET_PADLOCK_RNG] = M1(XSTORE),
    /* Knights Corner encodings: Zydis decodes them only in KNC mode, which
     * tgvm never uses; they are not x86-64 user code. */
    [ZYDIS_ISA_SET_KNCE] = NONE,
    [ZYDIS_ISA_SET_KNCJKBR] = NONE,
    [ZYDIS_ISA_SET_KNCSTREAM] = NONE,
    [ZYDIS_ISA_SET_KNCV] = NONE,
    [ZYDIS_ISA_SET_KNC_MISC] = NONE,
    [ZYDIS_ISA_SET_KNC_PF_HINT] = NONE,
    /* VEX */
    [ZYDIS_ISA_SET_AVX] = M1(AVX),
    [ZYDIS_ISA_SET_AVX2] = M2(AVX2, AVX),
    [ZYDIS_ISA_SET_AVX2GATHER] = M2(AVX2, AVX),
    [ZYDIS_ISA_SET_AVXAES] = M2(AES, AVX),
    [ZYDIS_ISA_SET_AVX_GFNI] = M2(GFNI, AVX),
    [ZYDIS_ISA_SET_AVX_VNNI] = M2(AVX_VNNI, AVX2),
    [ZYDIS_ISA_SET_VAES] = M2(VAES, AVX),
    [ZYDIS_ISA_SET_VPCLMULQDQ] = M2(VPCLMULQDQ, AVX),
    [ZYDIS_ISA_SET_F16C] = M2(F16C, AVX),
    [ZYDIS_ISA_SET_FMA] = M2(FMA, AVX),
    [ZYDIS_ISA_SET_FMA4] = M2(FMA4, AVX),
    [ZYDIS_ISA_SET_XOP] = M2(XOP, AVX),
    [ZYDIS_ISA_SET_AMX_BF16] = M2(AMX_BF16, AMX_TILE),
    [ZYDIS_ISA_SET_AMX_INT8] = M2(AMX_INT8, AMX_TILE),
    [ZYDIS_ISA_SET_AMX_TILE] = M1(AMX_TILE),
    /* EVEX: _128/_256 forms need avx512vl; _128N (moves to and from a
     * general register or memory, no vector length), _SCALAR and _KOP (mask
     * registers) do not. */
    [ZYDIS_ISA_SET_AVX512F_128] = VL(AVX512F),
    [ZYDIS_ISA_SET_AVX512F_128N] = M1(AVX512F),
    [ZYDIS_ISA_SET_AVX512F_256] = VL(AVX512F),
    [ZYDIS_ISA_SET_AVX512F_512] = M1(AVX512F),
    [ZYDIS_ISA_SET_AVX512F_KOP] = M1(AVX512F),
    [ZYDIS_ISA_SET_AVX512F_SCALAR] = M1(AVX512F),
    [ZYDIS_ISA_SET_AVX512BW_128] = VL(AVX512BW),
    [ZYDIS_ISA_SET_AVX512BW_128N] = M2(AVX512BW, AVX512F),
    [ZYDIS_ISA_SET_AVX512BW_256] = VL(AVX512BW),
    [ZYDIS_ISA_SET_AVX512BW_512] = M2(AVX512BW, AVX512F),
    [ZYDIS_ISA_SET_AVX512BW_KOP] = M2(AVX512BW, AVX512F),
    [ZYDIS_ISA_SET_AVX512CD_128] = VL(AVX512CD),
    [ZYDIS_ISA_SET_AVX512CD_256] = VL(AVX512CD),
    [ZYDIS_ISA_SET_AVX512CD_512] = M2(AVX512CD, AVX512F),
    [ZYDIS_ISA_SET_AVX512DQ_128] = VL(AVX512DQ),
    [ZYDIS_ISA_SET_AVX512DQ_128N] = M2(AVX512DQ, AVX512F),
    [ZYDIS_ISA_SET_AVX512DQ_256] = VL(AVX512DQ),
    [ZYDIS_ISA_SET_AVX512DQ_512] = M2(AVX512DQ, AVX512F),
    [ZYDIS_ISA_SET_AVX512DQ_KOP] = M2(AVX512DQ, AVX512F),
    [ZYDIS_ISA_SET_AVX512DQ_SCALAR] = M2(AVX512DQ, AVX512F),
    [ZYDIS_ISA_SET_AVX512ER_512] = M2(AVX512ER, AVX512F),
    [ZYDIS_ISA_SET_AVX512ER_SCALAR] = M2(AVX512ER, AVX512F),
    [ZYDIS_ISA_SET_AVX512PF_512] = M2(AVX512PF, AVX512F),
    [ZYDIS_ISA_SET_AVX512_4FMAPS_512] = M2(AVX512_4FMAPS, AVX512F),
    [ZYDIS_ISA_SET_AVX512_4FMAPS_SCALAR] = M2(AVX512_4FMAPS, AVX512F),
    [ZYDIS_ISA_SET_AVX512_4VNNIW_512] = M2(AVX512_4VNNIW, AVX512F),
    [ZYDIS_ISA_SET_AVX512_BF16_128] = VL(AVX512_BF16),
    [ZYDIS_ISA_SET_AVX512_BF16_256] = VL(AVX512_BF16),
    [ZYDIS_ISA_SET_AVX512_BF16_512] = M2(AVX512_BF16, AVX512F),
    [ZYDIS_ISA_SET_AVX512_BITALG_128] = VL(AVX512BITALG),
    [ZYDIS_ISA_SET_AVX512_BITALG_256] = VL(AVX512BITALG),
    [ZYDIS_ISA_SET_AVX512_BITALG_512] = M2(AVX512BITALG, AVX512F),
    [ZYDIS_ISA_SET_AVX512_FP16_128] = VL(AVX512_FP16),
    [ZYDIS_ISA_SET_AVX512_FP16_128N] = M2(AVX512_FP16, AVX512F),
    [ZYDIS_ISA_SET_AVX512_FP16_256] = VL(AVX512_FP16),
    [ZYDIS_ISA_SET_AVX512_FP16_512] = M2(AVX512_FP16, AVX512F),
    [ZYDIS_ISA_SET_AVX512_FP16_SCALAR] = M2(AVX512_FP16, AVX512F),
    [ZYDIS_ISA_SET_AVX512_GFNI_128] = VL2(GFNI, AVX512F),
    [ZYDIS_ISA_SET_AVX512_GFNI_256] = VL2(GFNI, AVX512F),
    [ZYDIS_ISA_SET_AVX512_GFNI_512] = M2(GFNI, AVX512F),
    [ZYDIS_ISA_SET_AVX512_IFMA_128] = VL(AVX512IFMA),
    [ZYDIS_ISA_SET_AVX512_IFMA_256] = VL(AVX512IFMA),
    [ZYDIS_ISA_SET_AVX512_IFMA_512] = M2(AVX512IFMA, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VAES_128] = VL2(VAES, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VAES_256] = VL2(VAES, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VAES_512] = M2(VAES, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VBMI2_128] = VL(AVX512VBMI2),
    [ZYDIS_ISA_SET_AVX512_VBMI2_256] = VL(AVX512VBMI2),
    [ZYDIS_ISA_SET_AVX512_VBMI2_512] = M2(AVX512VBMI2, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VBMI_128] = VL(AVX512VBMI),
    [ZYDIS_ISA_SET_AVX512_VBMI_256] = VL(AVX512VBMI),
    [ZYDIS_ISA_SET_AVX512_VBMI_512] = M2(AVX512VBMI, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VNNI_128] = VL(AVX512VNNI),
    [ZYDIS_ISA_SET_AVX512_VNNI_256] = VL(AVX512VNNI),
    [ZYDIS_ISA_SET_AVX512_VNNI_512] = M2(AVX512VNNI, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VP2INTERSECT_128] = VL(AVX512_VP2INTERSECT),
    [ZYDIS_ISA_SET_AVX512_VP2INTERSECT_256] = VL(AVX512_VP2INTERSECT),
    [ZYDIS_ISA_SET_AVX512_VP2INTERSECT_512] = M2(AVX512_VP2INTERSECT, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VPCLMULQDQ_128] = VL2(VPCLMULQDQ, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VPCLMULQDQ_256] = VL2(VPCLMULQDQ, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VPCLMULQDQ_512] = M2(VPCLMULQDQ, AVX512F),
    [ZYDIS_ISA_SET_AVX512_VPOPCNTDQ_128] = VL(AVX512_VPOPCNTDQ),
    [ZYDIS_ISA_SET_AVX512_VPOPCNTDQ_256] = VL(AVX512_VPOPCNTDQ),
    [ZYDIS_ISA_SET_AVX512_VPOPCNTDQ_512] = M2(AVX512_VPOPCNTDQ, AVX512F),
};

bool scan_isa_set_mapped(ZydisISASet set)
{
	return (unsigned)set <= ZYDIS_ISA_SET_MAX_VALUE && isa_map[set].mapped;
}

int scan_isa_set_features(ZydisISASet set, enum tgvm_feature *ret)
{
	if (!scan_isa_set_mapped(set))
		return 0;
	for (int i = 0; i < isa_map[set].n; i++)
		ret[i] = isa_map[set].f[i];
	return isa_map[set].n;
}

static int add(enum tgvm_feature *ret, int n, enum tgvm_feature f)
{
	for (int i = 0; i < n; i++)
		if (ret[i] == f)
			return n;
	if (n < SCAN_INSN_FEATURES_MAX)
		ret[n++] = f;
	return n;
}

/* Instructions whose ISA set is coarser than the CPUID bit that governs them. */
static int mnemonic_rule(const ZydisDecodedInstruction *insn, enum tgvm_feature *ret, int n)
{
	switch (insn->mnemonic) {
	case ZYDIS_MNEMONIC_TZCNT:
		/* rep bsf: runs as bsf without BMI1, with the same result for a
		 * nonzero source; compilers emit it for generic targets. */
		if (n == 1 && ret[0] == TGVM_F_BMI1)
			return 0;
		return n;
	case ZYDIS_MNEMONIC_RDTSC:
		return add(ret, n, TGVM_F_TSC);
	case ZYDIS_MNEMONIC_CMPXCHG8B:
		return add(ret, n, TGVM_F_CX8);
	case ZYDIS_MNEMONIC_MOVDIR64B:
		ret[0] = TGVM_F_MOVDIR64B; /* the MOVDIR set says movdiri */
		return 1;
	case ZYDIS_MNEMONIC_SYSCALL:
	case ZYDIS_MNEMONIC_SYSRET:
		return add(ret, n, TGVM_F_SYSCALL);
	case ZYDIS_MNEMONIC_FEMMS:
		return add(ret, n, TGVM_F_3DNOW);
	/* Shadow-stack instructions that are not NOPs without CET. */
	case ZYDIS_MNEMONIC_INCSSPD:
	case ZYDIS_MNEMONIC_INCSSPQ:
	case ZYDIS_MNEMONIC_RSTORSSP:
	case ZYDIS_MNEMONIC_SAVEPREVSSP:
	case ZYDIS_MNEMONIC_WRSSD:
	case ZYDIS_MNEMONIC_WRSSQ:
	case ZYDIS_MNEMONIC_WRUSSD:
	case ZYDIS_MNEMONIC_WRUSSQ:
	case ZYDIS_MNEMONIC_SETSSBSY:
	case ZYDIS_MNEMONIC_CLRSSBSY:
		return add(ret, n, TGVM_F_CET_SS);
	default:
		return n;
	}
}

int scan_isa_features(const ZydisDecodedInstruction *insn, enum tgvm_feature *ret)
{
	ZydisISASet set = insn->meta.isa_set;
	int n = 0;

	if ((unsigned)set <= ZYDIS_ISA_SET_MAX_VALUE)
		for (int i = 0; i < isa_map[set].n; i++)
			n = add(ret, n, isa_map[set].f[i]);
	/* Any EVEX form shorter than 512 bits that is not scalar or 128N needs VL;
	 * the ISA sets say so already, this catches sets a newer Zydis adds. */
	if (insn->encoding == ZYDIS_INSTRUCTION_ENCODING_EVEX) {
		n = add(ret, n, TGVM_F_AVX512F);
		if (insn->avx.vector_length && insn->avx.vector_length < 512)
			switch (set) {
			case ZYDIS_ISA_SET_AVX512F_SCALAR:
			case ZYDIS_ISA_SET_AVX512DQ_SCALAR:
			case ZYDIS_ISA_SET_AVX512ER_SCALAR:
			case ZYDIS_ISA_SET_AVX512_FP16_SCALAR:
			case ZYDIS_ISA_SET_AVX512_4FMAPS_SCALAR:
			case ZYDIS_ISA_SET_AVX512F_128N:
			case ZYDIS_ISA_SET_AVX512BW_128N:
			case ZYDIS_ISA_SET_AVX512DQ_128N:
			case ZYDIS_ISA_SET_AVX512_FP16_128N:
				break;
			default:
				n = add(ret, n, TGVM_F_AVX512VL);
			}
	}
	return mnemonic_rule(insn, ret, n);
}
