// The client's site: its own data and model for the job a server runs, and
// the work a task asks of it (LibTorch).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "compression/update_codec.h"
#include "fedtrack/core/torch_client.h"
#include "byte_codec.h"
#include "net/protocol.h"

namespace fedtrack::net {

struct Site {
  std::string signature;  // what the data and model were built for (data_signature)
  std::shared_ptr<TorchClient> app;
  std::shared_ptr<const Parameters> layout;  // the model's names and shapes (decodes compressed models)
  // The joined job's compression (docs/compression.md); null when off.
  std::shared_ptr<const compression::Plan> compression;
  std::string client;  // the site's name in the job (seeds its int8 rounding)
  // Error feedback: lives in this process across reconnects and rejoins of
  // one job; another job starts from zero.
  std::shared_ptr<compression::Residual> residual;
  std::string residual_job;
  // The model's layout and the storage every task's model is read into, as
  // it arrives (reused: no allocation or page faults per round).
  std::shared_ptr<Parameters> inbox;
};

// Takes the joined job's compression settings (after every join).
void adopt_compression(Site& site, const Joined& joined);

// A poll's answer as the client read it.
struct ReceivedTask {
  TaskMessage message;
  // Set when the model was read into site.inbox (message.payload empty).
  bool in_inbox = false;
  // The model broke the site's layout or held NaN/Inf: the task fails with it.
  std::string rejection;
};

// Reads a poll's answer of `size` bytes as it streams: the message head,
// then a task's model straight into `site->inbox` when there is a site
// (checked against its layout and for finite values while it lands), else
// into message.payload. Error(kCorruption) for a malformed answer.
ReceivedTask read_task(std::uint64_t size, const ByteSource& source, Site* site);

// Everything of a join that shapes the site's data and model: when it
// changes (another job), the site is built again.
std::string data_signature(const Joined& joined);

// Reads the shard in `data_dir` in the job's format and splits it into
// training and validation examples with the site's data seed.
Site make_site(const Joined& joined, const std::string& data_dir, const std::function<void(const std::string&)>& log);

// Fits or evaluates the task's model. A failure (a bad model, a training
// error) becomes a kTaskFailed result naming it, never an exception.
Result perform(const Site& site, TaskMessage& task, const std::function<void(const std::string&)>& log);
// The same for a task read by read_task.
Result perform(const Site& site, ReceivedTask& task, const std::function<void(const std::string&)>& log);

}  // namespace fedtrack::net
