import type { Channel, ChannelUpsert } from "../channel.ts";
import type { UserId } from "../ids.ts";

/** Users' channels. The SQL adapter seals URLs, tokens and secrets at rest and opens them on read. */
export interface ChannelStore {
  get(userId: UserId): Promise<Channel | undefined>;
  getMany(userIds: readonly UserId[]): Promise<Map<UserId, Channel>>;
  /** Creates or replaces the user's channel; the last test result is kept (as the original's upsert). */
  upsert(channel: ChannelUpsert, now: Date): Promise<void>;
  /** Hard delete; deleting a missing channel is not an error. */
  delete(userId: UserId): Promise<void>;
  /** Records a test's result; touches nothing when the channel no longer exists. */
  recordTest(userId: UserId, status: string, error: string, at: Date): Promise<void>;
}
