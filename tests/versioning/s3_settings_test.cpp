// Which DVC remote and which S3 settings fedtrack uses, resolved as `dvc
// push` (dvc-s3 + botocore) resolves them. No network: settings only.
#include <gtest/gtest.h>

#include <filesystem>
#include <map>

#include "dvc_remote_config.h"
#include "fedtrack/core/error.h"
#include "fedtrack/core/files.h"
#include "s3_remote.h"
#include "support/test_dir.h"

namespace fedtrack {
namespace {

namespace fs = std::filesystem;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars](const std::string& k) -> std::optional<std::string> {
    auto it = vars.find(k);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

DvcRemote s3_remote(std::map<std::string, std::string> settings = {}) {
  DvcRemote r;
  r.name = "storage";
  r.url = "s3://my-bucket/team/models/";
  r.settings = std::move(settings);
  return r;
}

class S3RemoteSettings : public ::testing::Test {
 protected:
  void SetUp() override { dir_ = testing::make_test_dir("fedtrack-s3-settings"); }
  void TearDown() override { testing::remove_test_dir(dir_); }
  fs::path dir_;
};

TEST_F(S3RemoteSettings, DefaultRemoteFromConfigWithConfigLocalOnTop) {
  const fs::path dvc = dir_ / ".dvc";
  fs::create_directories(dvc);
  // What `dvc remote add -d storage ...` + `dvc remote modify ...` write.
  write_file_atomically((dvc / "config").string(),
                        "[core]\n    remote = storage\n['remote \"storage\"']\n    url = s3://my-bucket/team\n"
                        "    endpointurl = http://127.0.0.1:9000\n['remote \"other\"']\n    url = /srv/dvc\n");
  write_file_atomically((dvc / "config.local").string(),
                        "['remote \"storage\"']\n    access_key_id = AKIA1\n    secret_access_key = s3cr3t\n");
  const auto r = default_dvc_remote(read_dvc_config(dvc));
  ASSERT_TRUE(r);
  EXPECT_EQ(r->name, "storage");
  EXPECT_EQ(r->url, "s3://my-bucket/team");
  EXPECT_EQ(r->settings.at("endpointurl"), "http://127.0.0.1:9000");
  EXPECT_EQ(r->settings.at("secret_access_key"), "s3cr3t");
  // versioning.remote naming a configured url takes that section.
  EXPECT_EQ(dvc_remote_for_url(read_dvc_config(dvc), "/srv/dvc", "fedtrack").name, "other");
  EXPECT_EQ(dvc_remote_for_url(read_dvc_config(dvc), "s3://elsewhere/x", "fedtrack").name, "fedtrack");
  // A relative folder url is relative to .dvc/, as DVC reads it.
  DvcRemote local;
  local.url = "../../shared-remote";
  EXPECT_EQ(local.folder(dvc), fs::absolute(dir_.parent_path() / "shared-remote").lexically_normal().string());
  // No default remote, and a default without a url.
  EXPECT_FALSE(default_dvc_remote(DvcConfig{}));
  EXPECT_THROW(default_dvc_remote(DvcConfig{{"core", {{"remote", "gone"}}}}), Error);
}

TEST_F(S3RemoteSettings, CredentialsInBotocoreOrder) {
  const std::string creds = (dir_ / "credentials").string();
  write_file_atomically(creds,
                        "[default]\naws_access_key_id = DEFAULTID\naws_secret_access_key = defaultsecret\n"
                        "[ci]\naws_access_key_id = CIID\naws_secret_access_key = cisecret\naws_session_token = citok\n");
  const std::map<std::string, std::string> env = {{"AWS_SHARED_CREDENTIALS_FILE", creds},
                                                  {"AWS_ACCESS_KEY_ID", "ENVID"},
                                                  {"AWS_SECRET_ACCESS_KEY", "envsecret"},
                                                  {"AWS_SESSION_TOKEN", "envtok"}};
  // 1. The remote's own keys win over everything.
  S3Settings s = resolve_s3_settings(s3_remote({{"access_key_id", "CFGID"}, {"secret_access_key", "cfgsecret"}}),
                                     env_of(env));
  EXPECT_EQ(s.access_key_id, "CFGID");
  EXPECT_EQ(s.secret_access_key, "cfgsecret");
  EXPECT_EQ(s.session_token, "");
  // 2. An explicit profile ignores AWS_ACCESS_KEY_ID (botocore drops the env provider).
  s = resolve_s3_settings(s3_remote({{"profile", "ci"}}), env_of(env));
  EXPECT_EQ(s.access_key_id, "CIID");
  EXPECT_EQ(s.session_token, "citok");
  EXPECT_NE(s.credentials_from.find("profile 'ci'"), std::string::npos);
  // 3. The environment.
  s = resolve_s3_settings(s3_remote(), env_of(env));
  EXPECT_EQ(s.access_key_id, "ENVID");
  EXPECT_EQ(s.session_token, "envtok");
  // 4. AWS_PROFILE / default from the shared file.
  s = resolve_s3_settings(s3_remote(), env_of({{"AWS_SHARED_CREDENTIALS_FILE", creds}}));
  EXPECT_EQ(s.access_key_id, "DEFAULTID");
  s = resolve_s3_settings(s3_remote(), env_of({{"AWS_SHARED_CREDENTIALS_FILE", creds}, {"AWS_PROFILE", "ci"}}));
  EXPECT_EQ(s.access_key_id, "CIID");
  // ~/.aws/credentials through HOME.
  fs::create_directories(dir_ / ".aws");
  fs::copy_file(creds, dir_ / ".aws" / "credentials");
  s = resolve_s3_settings(s3_remote(), env_of({{"HOME", dir_.string()}}));
  EXPECT_EQ(s.access_key_id, "DEFAULTID");
  // Nothing anywhere: unauthenticated, naming the remote, no secret in any message.
  try {
    resolve_s3_settings(s3_remote(), env_of({{"HOME", (dir_ / "empty").string()}}));
    FAIL() << "no credentials accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kUnauthenticated);
    EXPECT_NE(std::string(e.what()).find("DVC remote 'storage' (s3://my-bucket/team/models/)"), std::string::npos);
  }
  // Only half of a key pair is a configuration error.
  EXPECT_THROW(resolve_s3_settings(s3_remote({{"access_key_id", "X"}}), env_of(env)), Error);
}

TEST_F(S3RemoteSettings, EndpointRegionAndAddressing) {
  const auto env = env_of({{"AWS_ACCESS_KEY_ID", "ID"}, {"AWS_SECRET_ACCESS_KEY", "secret"}});
  // AWS: virtual-hosted, region default us-east-1.
  S3Settings s = resolve_s3_settings(s3_remote(), env);
  EXPECT_EQ(s.bucket, "my-bucket");
  EXPECT_EQ(s.prefix, "team/models");
  EXPECT_EQ(s.region, "us-east-1");
  S3Remote aws(s);
  EXPECT_EQ(aws.object_key("0123456789abcdef0123456789abcdef"), "team/models/files/md5/01/23456789abcdef0123456789abcdef");
  EXPECT_EQ(aws.object_url("team/a b"), "https://my-bucket.s3.us-east-1.amazonaws.com/team/a%20b");
  // endpointurl: path-style; region from the remote over the environment.
  s = resolve_s3_settings(s3_remote({{"endpointurl", "http://127.0.0.1:9000/"}, {"region", "eu-west-3"}}),
                          env_of({{"AWS_ACCESS_KEY_ID", "ID"}, {"AWS_SECRET_ACCESS_KEY", "secret"},
                                  {"AWS_REGION", "us-west-2"}, {"AWS_ENDPOINT_URL_S3", "http://ignored:1"}}));
  EXPECT_EQ(s.region, "eu-west-3");
  EXPECT_EQ(S3Remote(s).object_url("k/x"), "http://127.0.0.1:9000/my-bucket/k/x");
  // The endpoint from the environment as botocore reads it.
  s = resolve_s3_settings(s3_remote(), env_of({{"AWS_ACCESS_KEY_ID", "ID"}, {"AWS_SECRET_ACCESS_KEY", "secret"},
                                               {"AWS_ENDPOINT_URL", "http://127.0.0.1:7000"}}));
  EXPECT_EQ(s.endpoint, "http://127.0.0.1:7000");
  EXPECT_TRUE(s.path_style);
  // Settings that would change what is stored are refused, not ignored.
  EXPECT_THROW(resolve_s3_settings(s3_remote({{"sse", "aws:kms"}}), env), Error);
  EXPECT_THROW(resolve_s3_settings(s3_remote({{"endpointurl", "ftp://x"}}), env), Error);
  EXPECT_THROW(resolve_s3_settings(s3_remote({{"read_timeout", "soon"}}), env), Error);
  DvcRemote bad = s3_remote();
  bad.url = "s3://Bad_Bucket!/x";
  EXPECT_THROW(resolve_s3_settings(bad, env), Error);
  // Credentials in the url: refused, and the message does not repeat them.
  bad.url = "s3://AKIAID:topsecret@my-bucket/x";
  try {
    resolve_s3_settings(bad, env);
    FAIL() << "a url with credentials was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_EQ(std::string(e.what()).find("topsecret"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace fedtrack

namespace fedtrack {
namespace {

// What S3 answers becomes one line with an exit-status code, naming the
// remote and where the credentials came from, never a secret.
TEST(S3ErrorAnswers, MapToCodesAndNameTheRemote) {
  S3Settings s = resolve_s3_settings(s3_remote(), env_of({{"AWS_ACCESS_KEY_ID", "AKIAID"},
                                                          {"AWS_SECRET_ACCESS_KEY", "very-secret-value"}}));
  const auto answer = [](const std::string& code, const std::string& extra = "") {
    return "<?xml version=\"1.0\"?>\n<Error><Code>" + code + "</Code><Message>Some\nmessage</Message>" + extra +
           "</Error>";
  };
  const auto code_of = [&](long status, const std::string& body) { return s3_error(s, "PUT", "k", status, body); };
  for (const char* refused : {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "RequestTimeTooSkewed"}) {
    const Error e = code_of(403, answer(refused));
    EXPECT_EQ(e.code(), ErrorCode::kUnauthenticated) << refused;
    const std::string m = e.what();
    EXPECT_NE(m.find("DVC remote 'storage' (s3://my-bucket/team/models/)"), std::string::npos) << m;
    EXPECT_EQ(m.find('\n'), std::string::npos) << m;
    EXPECT_EQ(m.find("very-secret-value"), std::string::npos) << m;
  }
  EXPECT_NE(std::string(code_of(403, answer("RequestTimeTooSkewed")).what()).find("clock"), std::string::npos);
  EXPECT_NE(std::string(code_of(403, answer("ExpiredToken")).what()).find("AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"),
            std::string::npos);
  EXPECT_EQ(code_of(403, answer("AccessDenied")).code(), ErrorCode::kPermissionDenied);
  EXPECT_EQ(code_of(403, "").code(), ErrorCode::kUnauthenticated);  // a HEAD's 403 has no body
  EXPECT_EQ(code_of(404, answer("NoSuchBucket")).code(), ErrorCode::kNotFound);
  const Error region = code_of(301, answer("PermanentRedirect", "<Region>eu-west-1</Region>"));
  EXPECT_EQ(region.code(), ErrorCode::kInvalidArgument);
  EXPECT_NE(std::string(region.what()).find("the bucket is in 'eu-west-1'"), std::string::npos) << region.what();
  EXPECT_EQ(code_of(400, answer("BadDigest")).code(), ErrorCode::kCorruption);
  EXPECT_EQ(code_of(400, answer("SomethingNew")).code(), ErrorCode::kUnavailable);
}

}  // namespace
}  // namespace fedtrack
