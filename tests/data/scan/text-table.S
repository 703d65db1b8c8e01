/* SPDX-License-Identifier: MIT */
/* Corpus: a library whose .text holds a data table between functions. The
 * table's bytes decode as AVX-512 (vpaddd zmm0, zmm1, zmm2) and AVX2; a linear
 * sweep reports them, tgvm must not: nothing ever executes them. */
	.text
	.globl	table_sum
	.type	table_sum, @function
table_sum:
	.cfi_startproc
	leaq	lookup(%rip), %rax
	movzbl	(%rax,%rdi), %eax
	ret
	.cfi_endproc
	.size	table_sum, .-table_sum

	.p2align 4
	.type	lookup, @object
lookup:
	.byte	0x62, 0xf1, 0x75, 0x48, 0xfe, 0xc2	/* vpaddd zmm0, zmm1, zmm2 */
	.byte	0xc5, 0xfd, 0xfe, 0xc1			/* vpaddd ymm0, ymm0, ymm1 */
	.byte	0x62, 0xf2, 0x7d, 0x48, 0x58, 0xc1	/* vpbroadcastd zmm0, xmm1 */
	.byte	0, 1, 2, 3, 4, 5, 6, 7
	.size	lookup, .-lookup

	.p2align 4
	.globl	table_twice
	.type	table_twice, @function
table_twice:
	.cfi_startproc
	leal	(%rdi,%rdi), %eax
	ret
	.cfi_endproc
	.size	table_twice, .-table_twice
	.section .note.GNU-stack,"",@progbits
