// Which process owns a job's run, and whether that process is still there.
// Private to tracking/. Linux: the start time comes from /proc/PID/stat, so a
// pid reused by another process does not count as the owner.
#pragma once

#include <cstdint>
#include <string>

namespace fedtrack {

struct ProcessOwner {
  std::int64_t pid = 0;
  std::string host;
  std::int64_t start = 0;  // clock ticks since boot; 0 = unknown
};

ProcessOwner this_process();

// True when `owner` is known to be gone: it ran on this host and no process
// with its pid (and start time) exists any more, or no owner was recorded.
// An owner on another host is never known to be gone.
bool owner_gone(const ProcessOwner& owner);

}  // namespace fedtrack
