/*
 * Client side of the qtest protocol: start kestrel with no CPU
 * (-accel qtest) and drive ports, memory, the virtual clock and IRQ lines.
 *
 * Wire protocol (text lines over a unix socket; kestrel connects to the
 * socket libqtest listens on, given as -qtest unix:PATH):
 *   outb|outw|outl PORT VALUE            -> OK
 *   inb|inw|inl PORT                     -> OK VALUE
 *   writeb|writew|writel|writeq ADDR VAL -> OK
 *   readb|readw|readl|readq ADDR         -> OK VALUE
 *   read ADDR LEN                        -> OK 0xHEXBYTES
 *   write ADDR LEN 0xHEXBYTES            -> OK
 *   clock_step [NS]                      -> OK NOW   (no NS: to the next timer deadline)
 *   clock_set NS                         -> OK NOW
 *   irq_intercept_in ioapic              -> OK       (then asynchronous lines
 *                                                    "IRQ raise N" / "IRQ lower N" for GSI N)
 *   system_reset                         -> OK
 * Numbers are C syntax (0x.. hex accepted); replies print hex with 0x.
 * A malformed command gets "FAIL reason" and the session continues.
 */
#ifndef KESTREL_LIBQTEST_H
#define KESTREL_LIBQTEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct QTest QTest;

/* Start kestrel -accel qtest -display none -nodefaults <extra_args> (split on spaces). */
QTest *qtest_start(const char *extra_args);
/* Kill (if still running) and reap; removes the socket. */
void qtest_quit(QTest *qt);
/* Wait for the process to exit on its own (e.g. isa-debug-exit); returns exit status,
 * or -1 on timeout/signal. */
int qtest_wait_exit(QTest *qt, int timeout_seconds);
/* Send a raw command line and return the reply (caller frees); NULL if the process died. */
char *qtest_raw(QTest *qt, const char *line);

void qtest_outb(QTest *qt, uint16_t port, uint8_t v);
void qtest_outw(QTest *qt, uint16_t port, uint16_t v);
void qtest_outl(QTest *qt, uint16_t port, uint32_t v);
uint8_t qtest_inb(QTest *qt, uint16_t port);
uint16_t qtest_inw(QTest *qt, uint16_t port);
uint32_t qtest_inl(QTest *qt, uint16_t port);

/*
 * PCI configuration mechanism #1 (0xcf8 address, 0xcfc data) on bus 0;
 * devfn = slot << 3 | function.  Sub-dword accesses use the matching byte
 * lanes of 0xcfc, as firmware does.
 */
uint8_t qtest_pci_cfg_readb(QTest *qt, int devfn, int reg);
uint16_t qtest_pci_cfg_readw(QTest *qt, int devfn, int reg);
uint32_t qtest_pci_cfg_readl(QTest *qt, int devfn, int reg);
void qtest_pci_cfg_writeb(QTest *qt, int devfn, int reg, uint8_t v);
void qtest_pci_cfg_writew(QTest *qt, int devfn, int reg, uint16_t v);
void qtest_pci_cfg_writel(QTest *qt, int devfn, int reg, uint32_t v);

void qtest_writeb(QTest *qt, uint64_t addr, uint8_t v);
void qtest_writew(QTest *qt, uint64_t addr, uint16_t v);
void qtest_writel(QTest *qt, uint64_t addr, uint32_t v);
void qtest_writeq(QTest *qt, uint64_t addr, uint64_t v);
uint8_t qtest_readb(QTest *qt, uint64_t addr);
uint16_t qtest_readw(QTest *qt, uint64_t addr);
uint32_t qtest_readl(QTest *qt, uint64_t addr);
uint64_t qtest_readq(QTest *qt, uint64_t addr);
void qtest_memread(QTest *qt, uint64_t addr, void *buf, size_t len);
void qtest_memwrite(QTest *qt, uint64_t addr, const void *buf, size_t len);

int64_t qtest_clock_step(QTest *qt, int64_t ns);     /* ns < 0: to next deadline */
int64_t qtest_clock_set(QTest *qt, int64_t ns);

void qtest_irq_intercept(QTest *qt);
/* Current level of GSI n as last reported by kestrel. */
bool qtest_get_irq(QTest *qt, int gsi);

void qtest_system_reset(QTest *qt);

/*
 * Run kestrel -accel qtest -qtest unix:/nonexistent/... -display none
 * -nodefaults ARGS (NULL-terminated), for command lines it must refuse: the
 * endpoint is only opened after every device is built, so an exit before it
 * comes from ARGS.  Returns the exit status (-1 on signal or timeout) and
 * stderr in errbuf.  Assert on the message too, not only on the status.
 */
int qtest_run_expect_exit(const char *const *args, char *errbuf, size_t errlen);
/* The usual assertion on top: exit status 1 and an error line containing 'what'. */
void qtest_expect_user_error(const char *const *args, const char *what);

#endif
