CREATE TABLE `local_credentials` (
	`profile_id` integer PRIMARY KEY NOT NULL,
	`username` text NOT NULL,
	`password_hash` text NOT NULL,
	`source` text NOT NULL,
	`updated_at` integer DEFAULT (unixepoch()) NOT NULL,
	FOREIGN KEY (`profile_id`) REFERENCES `profiles`(`profile_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `local_credentials_username_unique` ON `local_credentials` (`username`);--> statement-breakpoint
CREATE TABLE `profiles` (
	`profile_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`uuid` text NOT NULL,
	`name` text NOT NULL,
	`created_at` integer DEFAULT (unixepoch()) NOT NULL,
	`is_active` integer DEFAULT true NOT NULL,
	`provider` text DEFAULT 'local' NOT NULL,
	`email` text,
	`last_login_at` integer,
	`last_sync_at` integer
);
--> statement-breakpoint
CREATE UNIQUE INDEX `profiles_uuid_unique` ON `profiles` (`uuid`);--> statement-breakpoint
CREATE TABLE `sessions` (
	`session_id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`key_hash` text NOT NULL,
	`profile_id` integer NOT NULL,
	`created_at` integer DEFAULT (unixepoch()) NOT NULL,
	`last_used_at` integer DEFAULT (unixepoch()) NOT NULL,
	`client_version` text,
	`revoked_at` integer,
	FOREIGN KEY (`profile_id`) REFERENCES `profiles`(`profile_id`) ON UPDATE no action ON DELETE cascade
);
--> statement-breakpoint
CREATE UNIQUE INDEX `sessions_key_hash_unique` ON `sessions` (`key_hash`);--> statement-breakpoint
CREATE INDEX `sessions_profile_idx` ON `sessions` (`profile_id`);