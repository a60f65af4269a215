/* Reset for QEMU's mps2-an386 (Cortex-M4F): copy .data from flash, enable the FPU, then
 * newlib's _start (rdimon: zeroes .bss, opens the semihosting console, calls main); built
 * with -DECL_BOARD_BARE (`make cortex-m4-bare`) it zeroes .bss itself and calls main with
 * no arguments (the app reads them through board/semihost.h), and newlib's start-up and
 * stdio stay out of the image. */
#include <stdint.h>

extern uint32_t _sidata, _sdata, _edata, _estack, __bss_start__, __bss_end__;
#ifdef ECL_BOARD_BARE
int main(void);
void ecl_sh_exit(int status);
#else
extern void _start(void);
#endif
void Reset_Handler(void);
void Default_Handler(void);
void SysTick_Handler(void) __attribute__((weak, alias("Default_Handler")));

__attribute__((section(".vectors"), used)) const uintptr_t ecl_vectors[16] = {
    (uintptr_t)&_estack, (uintptr_t)Reset_Handler, (uintptr_t)Default_Handler,
    (uintptr_t)Default_Handler, (uintptr_t)Default_Handler, (uintptr_t)Default_Handler,
    (uintptr_t)Default_Handler, 0, 0, 0, 0, (uintptr_t)Default_Handler,
    (uintptr_t)Default_Handler, 0, (uintptr_t)Default_Handler, (uintptr_t)SysTick_Handler};

void Reset_Handler(void) {
    uint32_t *src = &_sidata, *dst = &_sdata;
    volatile uint32_t *cpacr = (volatile uint32_t *)0xE000ED88u;
    while (dst < &_edata) *dst++ = *src++;
    *cpacr |= 0xFu << 20; /* CP10, CP11: full access to the FPU */
    __asm__ volatile("dsb\n\tisb");
#ifdef ECL_BOARD_BARE
    for (dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
    ecl_sh_exit(main());
#else
    _start();
#endif
    for (;;) {
    }
}

void Default_Handler(void) {
    for (;;) {
    }
}
