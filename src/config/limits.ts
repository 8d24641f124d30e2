/**
 * The limits of vm.conf, as OpenBSD's vmd enforces them, plus the limits of our Linux extensions.
 *
 * @module
 */

/** VMM_MAX_NAME_LEN: 64 bytes including the terminating NUL, so a name has at most 63 characters. */
export const MAX_VM_NAME_LENGTH = 63;
/** VM_MAX_DISKS_PER_VM. */
export const MAX_DISKS_PER_VM = 4;
/** VM_MAX_NICS_PER_VM. */
export const MAX_NICS_PER_VM = 4;
/** VM_MAX_BASE_PER_DISK: how deep a qcow2 backing chain may be. Enforced by the disk layer when it opens a disk. */
export const MAX_BACKING_IMAGES = 4;
/** IF_NAMESIZE (16) including the NUL: interface, switch-interface and group names have at most 15 characters. */
export const MAX_IFNAME_LENGTH = 15;
/** Smallest VM memory: one megabyte. */
export const MIN_MEMORY_BYTES = 1024 * 1024;
/** VMM_MAX_VM_MEM_SIZE on amd64: 128 GiB. */
export const MAX_MEMORY_BYTES = 128 * 1024 * 1024 * 1024;
/** The default memory size of a VM: 512M. */
export const DEFAULT_MEMORY_BYTES = 512 * 1024 * 1024;
/** RT_TABLEID_MAX: the largest routing domain id. */
export const MAX_RDOMAIN = 255;
/** Extension `cpus`: at most VMM_MAX_VCPUS_PER_VM (64) vCPUs per VM. */
export const MAX_CPUS_PER_VM = 64;
/** The default vCPU count. */
export const DEFAULT_CPUS = 1;
/** Include files nested deeper than this are refused (a guard on top of loop detection). */
export const MAX_INCLUDE_DEPTH = 16;
/** The longest string token, as vmd's lexer buffer. */
export const MAX_TOKEN_LENGTH = 8095;
/** The default AgentX master socket. */
export const DEFAULT_AGENTX_PATH = "/var/agentx/master";
/** The default configuration file. */
export const DEFAULT_CONFIG_PATH = "/etc/vm.conf";
/**
 * Extension `pool size`: VM processes the daemon keeps started ahead, by default. One makes a start on a
 * quiet daemon fast and costs one idle process (a Deno runtime and a vCPU worker's isolate, no guest RAM).
 */
export const DEFAULT_POOL_SIZE = 1;
/** The largest `pool size`. */
export const MAX_POOL_SIZE = 16;
