// GTO-style model registry tags in a git repository (what `gto register` and
// `gto assign` write, so `gto show` lists them):
//   NAME@vX.Y.Z     annotated, "Registering artifact NAME version vX.Y.Z"
//   NAME#STAGE#N    annotated, "Assigning stage STAGE to artifact NAME version vX.Y.Z"
// N counts up across all of NAME's stage tags. Torch-free; libgit2.
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace fedtrack {

struct GtoVersion {
  std::string tag;      // NAME@v1.2.3
  std::string version;  // v1.2.3
  std::string commit;
};

// GTO artifact and stage names: is_dvc_artifact_name (dvc_artifacts.h), so
// a promoted name is one dvc.yaml can declare. Error(kInvalidArgument) otherwise.
void check_gto_name(const std::string& name);

// All NAME@vX.Y.Z tags, in version order.
std::vector<GtoVersion> gto_versions(const std::string& repo, const std::string& name);

// The version registered on `commit`, if any.
std::optional<GtoVersion> gto_version_at(const std::string& repo, const std::string& name, const std::string& commit);

// The next patch version after the highest registered one; v0.0.1 first.
std::string gto_next_version(const std::string& repo, const std::string& name);

// Creates NAME@version on `commit`; returns the tag name.
std::string gto_register(const std::string& repo, const std::string& name, const std::string& version,
                         const std::string& commit, const std::string& author);

// Creates NAME#stage#N (N = one more than NAME's highest counter) on `commit`.
std::string gto_assign(const std::string& repo, const std::string& name, const std::string& stage,
                       const std::string& version, const std::string& commit, const std::string& author);

// The commit the latest NAME#stage#N tag points at. Error(kNotFound) when the
// stage was never assigned.
GtoVersion gto_stage(const std::string& repo, const std::string& name, const std::string& stage);

// Pushes the given tags to `origin` when the repository has that remote;
// returns whether it did.
bool push_tags_if_remote(const std::string& repo, const std::vector<std::string>& tags);

}  // namespace fedtrack
