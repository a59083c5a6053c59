// ClientProxy — the server's handle on one client, wherever it runs.
//
// The simulation runtime's proxy calls a ClientApp in the same process; the
// network runtime's proxy talks to a remote process. fit() and evaluate() may
// be called concurrently for different proxies, never concurrently on the same
// one. They throw fedtrack::Error (or any std::exception) on failure; the
// server records that as the client's failure for the round.
#pragma once

#include <cstdint>
#include <string>
#include <utility>

#include "fedtrack/core/strategy.h"

namespace fedtrack {

class ClientProxy {
 public:
  explicit ClientProxy(std::string id) : id_(std::move(id)) {}
  virtual ~ClientProxy() = default;

  const std::string& id() const { return id_; }

  virtual FitRes fit(const FitIns& ins, TransferStats& transfer) = 0;
  virtual EvaluateRes evaluate(const EvaluateIns& ins, TransferStats& transfer) = 0;

  // How much work a call of this client is, relative to the others (the
  // simulation: its number of examples); 0 = unknown. The server starts the
  // largest first, so a round does not end with one client working while
  // the other threads idle. Results are aggregated in id order regardless.
  virtual std::int64_t expected_work() const { return 0; }

 private:
  std::string id_;
};

}  // namespace fedtrack
