CREATE TABLE `known_logins` (
	`key_hash` text PRIMARY KEY NOT NULL,
	`last_login_at` integer DEFAULT (unixepoch()) NOT NULL
);
