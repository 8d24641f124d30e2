/**
 * The vCPU lifecycle as an explicit state machine: created → running ⇄ paused → stopped.
 *
 * @module
 */

/** The states, numbered for the shared control block. */
export const VcpuState = {
  Created: 0,
  Running: 1,
  Paused: 2,
  Stopped: 3,
} as const;

/** A state value. */
export type VcpuState = typeof VcpuState[keyof typeof VcpuState];

/** The events that move a vCPU between states. */
export type VcpuEvent = "start" | "pause" | "resume" | "stop" | "exit";

const NAMES = ["created", "running", "paused", "stopped"] as const;

/** The state's name. */
export function vcpuStateName(s: VcpuState): (typeof NAMES)[number] {
  return NAMES[s];
}

/** An event that is not allowed in the current state. */
export class VcpuStateError extends Error {
  /** The state the vCPU was in. */
  readonly state: VcpuState;
  /** The refused event. */
  readonly event: VcpuEvent;

  /** Builds the error. */
  constructor(state: VcpuState, event: VcpuEvent) {
    super(`vCPU cannot ${event} while ${vcpuStateName(state)}`);
    this.name = "VcpuStateError";
    this.state = state;
    this.event = event;
  }
}

const TRANSITIONS: Readonly<Record<VcpuEvent, ReadonlyArray<readonly [VcpuState, VcpuState]>>> = {
  start: [[VcpuState.Created, VcpuState.Running]],
  pause: [[VcpuState.Running, VcpuState.Paused]],
  resume: [[VcpuState.Paused, VcpuState.Running]],
  stop: [
    [VcpuState.Created, VcpuState.Stopped],
    [VcpuState.Running, VcpuState.Stopped],
    [VcpuState.Paused, VcpuState.Stopped],
  ],
  // the guest ended the run (exit port, shutdown, error)
  exit: [[VcpuState.Running, VcpuState.Stopped]],
};

/** The state after `event` in `state`; throws {@link VcpuStateError} if the event is not allowed. */
export function nextVcpuState(state: VcpuState, event: VcpuEvent): VcpuState {
  for (const [from, to] of TRANSITIONS[event]) if (from === state) return to;
  throw new VcpuStateError(state, event);
}
