/*
 * Kestrel's floppy boot sector (GNU as, 16-bit real mode, BIOS calls only).
 *
 * The BIOS loads sector 1 of the floppy to 0000:7C00 and jumps to it with
 * DL = the boot drive (IBM PC/AT BIOS boot convention; SeaBIOS src/boot.c
 * checks the 0x55 0xAA signature at offset 510 for floppies too).  We:
 *   1. initialise COM1 with INT 14h AH=00h (so the text reaches the serial
 *      port even when the BIOS has no serial console of its own);
 *   2. print "KESTREL-FLOPPY-OK" through INT 10h AH=0Eh (teletype), then the
 *      same line through INT 14h AH=01h (one character per call) -- whole
 *      strings one after the other, never interleaved, so a BIOS that mirrors
 *      the screen to the serial port still shows one intact copy;
 *   3. read CHS 0/0/2 (the second sector) with INT 13h AH=02h to 0000:7E00,
 *      retrying three times with a controller reset (AH=00h) in between,
 *      and print the NUL-terminated text the image builder stored there
 *      (tests/guests/build-floppy), or "KESTREL-FLOPPY-READ-FAIL ah=XX";
 *   4. write 0x21 to the isa-debug-exit port 0xF4 (exit status
 *      (0x21 << 1) | 1 = 0x43), or 0x01 after a failed read (status 3);
 *      without that device, halt forever.
 *
 * Built by tests/guests/build-floppy: as --32, ld -Ttext 0x7c00, objcopy -O
 * binary; the result must be exactly 512 bytes.
 */
    .set COM1_UNIT,     0           /* INT 14h DX: 0 = COM1 */
    .set SERIAL_INIT,   0xe3        /* INT 14h AH=00h AL: 9600 baud, no parity, 1 stop, 8 bits */
    .set SECTOR2_BUF,   0x7e00
    .set DEBUG_EXIT,    0xf4
    .set EXIT_OK,       0x21
    .set EXIT_BAD,      0x01

    .code16
    .text
    .globl _start
_start:
    cli
    xorw %ax, %ax
    movw %ax, %ds
    movw %ax, %es
    movw %ax, %ss
    movw $0x7c00, %sp
    ljmp $0, $1f                    /* CS:IP = 0000:7Cxx whatever the BIOS used */
1:  sti
    cld
    movb %dl, boot_drive

    movb $0x00, %ah                 /* INT 14h AH=00h: initialise the port */
    movb $SERIAL_INIT, %al
    movw $COM1_UNIT, %dx
    int $0x14

    movw $msg_ok, %si
    call print_both

    /* INT 13h AH=02h: AL sectors, CH cylinder, CL sector, DH head, DL drive, ES:BX buffer. */
    movb $3, retries
read_again:
    movw $0x0201, %ax
    movw $0x0002, %cx
    movb $0, %dh
    movb boot_drive, %dl
    movw $SECTOR2_BUF, %bx
    int $0x13
    jnc read_ok
    movb %ah, read_status
    decb retries
    jz read_failed
    movb $0x00, %ah                 /* reset the controller before retrying */
    movb boot_drive, %dl
    int $0x13
    jmp read_again

read_ok:
    movb $0, SECTOR2_BUF + 511      /* never run past the buffer */
    movw $SECTOR2_BUF, %si
    call print_both
    movw $crlf, %si
    call print_both
    movb $EXIT_OK, %al
    jmp finish

read_failed:
    movb read_status, %al           /* two hex digits of the BIOS status into the message */
    movb %al, %ah
    shrb $4, %al
    call hex_digit
    movb %al, msg_fail_hex
    movb %ah, %al
    andb $0x0f, %al
    call hex_digit
    movb %al, msg_fail_hex + 1
    movw $msg_fail, %si
    call print_both
    movb $EXIT_BAD, %al

finish:
    outb %al, $DEBUG_EXIT
    cli
2:  hlt
    jmp 2b

/* hex_digit: AL (0-15) -> ASCII in AL. */
hex_digit:
    addb $'0', %al
    cmpb $'9', %al
    jbe 1f
    addb $'A' - '9' - 1, %al
1:  ret

/* print_both: the NUL-terminated string at DS:SI, first on the screen, then on COM1. */
print_both:
    pushw %si
1:  lodsb
    testb %al, %al
    jz 2f
    movb $0x0e, %ah                 /* INT 10h AH=0Eh: teletype output, BH page, BL colour */
    movw $0x0007, %bx
    int $0x10
    jmp 1b
2:  popw %si
3:  lodsb
    testb %al, %al
    jz 4f
    movb $0x01, %ah                 /* INT 14h AH=01h: send AL on port DX */
    movw $COM1_UNIT, %dx
    int $0x14
    jmp 3b
4:  ret

msg_ok:       .asciz "KESTREL-FLOPPY-OK\r\n"
msg_fail:     .ascii "KESTREL-FLOPPY-READ-FAIL ah="
msg_fail_hex: .asciz "??\r\n"
crlf:         .asciz "\r\n"
boot_drive:   .byte 0
retries:      .byte 0
read_status:  .byte 0

    .org 510
    .byte 0x55, 0xaa
