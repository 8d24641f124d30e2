/**
 * QEMU's firmware configuration (fw_cfg) interface as data: the x86 port numbers, the selector keys with
 * QEMU's names (`include/standard-headers/linux/qemu_fw_cfg.h`, `hw/i386/fw_cfg.h`), the feature bits and
 * the DMA control bits (QEMU's `docs/specs/fw_cfg.rst`).
 *
 * @module
 */

/** The x86 port numbers: selector (16-bit), data (8-bit) and the DMA address register (64-bit, big-endian). */
export const FW_CFG_PORTS = { selector: 0x510, data: 0x511, dma: 0x514 } as const;

/** Selector keys. Keys from {@link FW_CFG_KEY.FW_CFG_FILE_FIRST} on are files listed in the file directory. */
export const FW_CFG_KEY = {
  FW_CFG_SIGNATURE: 0x00,
  FW_CFG_ID: 0x01,
  FW_CFG_UUID: 0x02,
  FW_CFG_RAM_SIZE: 0x03,
  FW_CFG_NOGRAPHIC: 0x04,
  FW_CFG_NB_CPUS: 0x05,
  FW_CFG_MACHINE_ID: 0x06,
  FW_CFG_BOOT_DEVICE: 0x0c,
  FW_CFG_NUMA: 0x0d,
  FW_CFG_BOOT_MENU: 0x0e,
  FW_CFG_MAX_CPUS: 0x0f,
  FW_CFG_FILE_DIR: 0x19,
  FW_CFG_FILE_FIRST: 0x20,
  FW_CFG_ARCH_LOCAL: 0x8000,
  FW_CFG_ACPI_TABLES: 0x8000,
  FW_CFG_SMBIOS_ENTRIES: 0x8001,
  FW_CFG_IRQ0_OVERRIDE: 0x8002,
  FW_CFG_E820_TABLE: 0x8003,
} as const;

/** The legacy "write" bit of a selector (ignored by QEMU since 2.4, and by vmd). */
export const FW_CFG_WRITE_CHANNEL = 0x4000;
/** The selector bits that name an item (the architecture bit included). */
export const FW_CFG_ENTRY_MASK = 0xbfff;

/** `FW_CFG_ID` feature bits. */
export const FW_CFG_VERSION = { FW_CFG_VERSION: 0x01, FW_CFG_VERSION_DMA: 0x02 } as const;

/** `FWCfgDmaAccess.control` bits. */
export const FW_CFG_DMA_CTL = {
  FW_CFG_DMA_CTL_ERROR: 0x01,
  FW_CFG_DMA_CTL_READ: 0x02,
  FW_CFG_DMA_CTL_SKIP: 0x04,
  FW_CFG_DMA_CTL_SELECT: 0x08,
  FW_CFG_DMA_CTL_WRITE: 0x10,
} as const;

/** What reading the DMA address register returns: "QEMU CFG" as a big-endian 64-bit value. */
export const FW_CFG_DMA_SIGNATURE = 0x51454d5520434647n;

/** `struct FWCfgFile`: size (be32), select (be16), reserved (be16), name[56]. */
export const FW_CFG_FILE_ENTRY_SIZE = 64;
/** Longest file name (the name field holds it and its NUL). */
export const FW_CFG_MAX_NAME = 55;
/** `struct FWCfgDmaAccess`: control (be32), length (be32), address (be64). */
export const FW_CFG_DMA_ACCESS_SIZE = 16;
