import { describe, expect, test } from "bun:test";
import { ConfigError, loadConfig, unknownSettings } from "../../src/config.ts";

const POOL = {
  ANKISYNCD_COGNITO_USER_POOL_ID: "eu-central-1_AbC123",
  ANKISYNCD_COGNITO_CLIENT_ID: "cid",
};

function problems(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
    return [];
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
}

describe("identity settings", () => {
  test("without a pool: local only, no Cognito", () => {
    const config = loadConfig({});
    expect(config.authProviders).toEqual(["local"]);
    expect(config.cognito).toBeNull();
    expect(config.loginRate).toEqual({ perIp: 30, perUser: 10, windowSecs: 300 });
  });

  test("with a pool: local then Cognito; region from the setting, AWS_DEFAULT_REGION or the pool id", () => {
    const config = loadConfig(POOL);
    expect(config.authProviders).toEqual(["local", "cognito"]);
    expect(config.cognito).toMatchObject({
      region: "eu-central-1",
      clientSecret: null,
      credentials: null,
      recheckSecs: 300,
      endpoint: null,
    });
    expect(loadConfig({ ...POOL, AWS_DEFAULT_REGION: "us-west-2" }).cognito?.region).toBe(
      "us-west-2",
    );
    expect(
      loadConfig({
        ...POOL,
        AWS_DEFAULT_REGION: "us-west-2",
        ANKISYNCD_COGNITO_REGION: "ap-south-1",
      }).cognito?.region,
    ).toBe("ap-south-1");
  });

  test("order, credentials and endpoint", () => {
    const config = loadConfig({
      ...POOL,
      ANKISYNCD_AUTH_PROVIDERS: "cognito, local",
      AWS_ACCESS_KEY_ID: "AKIA",
      AWS_SECRET_ACCESS_KEY: "secret",
      ANKISYNCD_COGNITO_ENDPOINT: "http://127.0.0.1:5000/",
      ANKISYNCD_COGNITO_RECHECK_SECS: "2",
    });
    expect(config.authProviders).toEqual(["cognito", "local"]);
    expect(config.cognito).toMatchObject({
      credentials: { accessKeyId: "AKIA", secretAccessKey: "secret" },
      endpoint: "http://127.0.0.1:5000",
      recheckSecs: 2,
    });
  });

  test("bad identity settings are reported together", () => {
    expect(problems({ ANKISYNCD_AUTH_PROVIDERS: "cognito" })).toEqual([
      "ANKISYNCD_AUTH_PROVIDERS: no usable provider (cognito needs a user pool)",
    ]);
    expect(
      problems({
        ANKISYNCD_COGNITO_USER_POOL_ID: "nopoolregion",
        AWS_ACCESS_KEY_ID: "only-one",
        ANKISYNCD_AUTH_PROVIDERS: "local,ldap,local",
        ANKISYNCD_LOGIN_RATE_PER_IP: "-1",
      }),
    ).toHaveLength(6);
  });

  test("Cognito setting typos are reported like the others", () => {
    expect(
      unknownSettings({ ANKISYNCD_COGNITO_USERPOOL_ID: "x", ANKISYNCD_COGNITO_CLIENT_ID: "y" }),
    ).toEqual(["ANKISYNCD_COGNITO_USERPOOL_ID"]);
  });
});
