/**
 * The local user database (/etc/passwd and /etc/group), read when the daemon needs to turn a configured
 * owner name into ids or a uid into the groups it belongs to.
 *
 * @module
 */

/** A user. */
export interface UserEntry {
  /** Login name. */
  readonly name: string;
  /** User id. */
  readonly uid: number;
  /** Primary group id. */
  readonly gid: number;
}

/** A group. */
export interface GroupEntry {
  /** Group name. */
  readonly name: string;
  /** Group id. */
  readonly gid: number;
  /** Member login names. */
  readonly members: readonly string[];
}

/** Users and groups, parsed. */
export class UserDb {
  /** Users. */
  readonly users: readonly UserEntry[];
  /** Groups. */
  readonly groups: readonly GroupEntry[];

  /** Builds the database from the files' text. */
  constructor(passwd: string, group: string) {
    this.users = passwd.split("\n").flatMap((line) => {
      const f = line.split(":");
      if (f.length < 4 || line.startsWith("#")) return [];
      const uid = Number(f[2]);
      const gid = Number(f[3]);
      return Number.isInteger(uid) && Number.isInteger(gid) ? [{ name: f[0], uid, gid }] : [];
    });
    this.groups = group.split("\n").flatMap((line) => {
      const f = line.split(":");
      if (f.length < 4 || line.startsWith("#")) return [];
      const gid = Number(f[2]);
      return Number.isInteger(gid)
        ? [{ name: f[0], gid, members: f[3].split(",").filter((m) => m !== "") }]
        : [];
    });
  }

  /** Reads /etc/passwd and /etc/group (an unreadable file counts as empty). */
  static async load(): Promise<UserDb> {
    const read = (p: string) => Deno.readTextFile(p).catch(() => "");
    return new UserDb(await read("/etc/passwd"), await read("/etc/group"));
  }

  /** The user called `name`. */
  user(name: string): UserEntry | undefined {
    return this.users.find((u) => u.name === name);
  }

  /** The user with id `uid`. */
  userById(uid: number): UserEntry | undefined {
    return this.users.find((u) => u.uid === uid);
  }

  /** The group called `name`. */
  group(name: string): GroupEntry | undefined {
    return this.groups.find((g) => g.name === name);
  }

  /** The group with id `gid`. */
  groupById(gid: number): GroupEntry | undefined {
    return this.groups.find((g) => g.gid === gid);
  }

  /** Every group id of `uid`: `gid` (the peer's) and each group listing the user as a member. */
  groupIdsOf(uid: number, gid: number): Set<number> {
    const ids = new Set<number>([gid]);
    const user = this.userById(uid);
    if (user !== undefined) {
      ids.add(user.gid);
      for (const g of this.groups) if (g.members.includes(user.name)) ids.add(g.gid);
    }
    return ids;
  }
}
