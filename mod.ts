/**
 * vmd: a virtual machine monitor for Linux/KVM, modelled on OpenBSD's vmd(8).
 *
 * This module re-exports the library API only; it has no side effects.
 *
 * @module
 */
