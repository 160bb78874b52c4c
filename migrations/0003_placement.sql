CREATE TABLE `nodes` (
	`id` text PRIMARY KEY NOT NULL,
	`public_url` text NOT NULL,
	`instance` text NOT NULL,
	`started_at` integer NOT NULL,
	`lease_expires_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `placements` (
	`user_uuid` text PRIMARY KEY NOT NULL,
	`node_id` text NOT NULL,
	`lease_expires_at` integer NOT NULL,
	`moving_to` text
);
--> statement-breakpoint
CREATE INDEX `placements_node_idx` ON `placements` (`node_id`);