package main

import (
	"context"
	"fmt"
)

// natsConfig is the broadcast-nats scenario: the broadcast load, without
// stalled subscribers, on one pollws instance alone and then on
// instances of them that share the topic through one NATS broker, with
// the servers' memory per subscriber.
type natsConfig struct {
	bcast     broadcastConfig
	instances int
}

// natsResult is what broadcast-nats measured: the run on one instance
// alone and the run over the broker.
type natsResult struct {
	alone, over broadcastResult
}

// runBroadcastNATS runs the broadcast on alone, a server with no broker,
// then starts the broker and cfg.instances servers of alone's
// implementation joined to it and runs it again there, with the
// publisher on the first and the subscribers spread over all.
func runBroadcastNATS(ctx context.Context, bin, brokerBin string, alone *server, cfg natsConfig) (natsResult, error) {
	var res natsResult
	var err error
	if res.alone, err = runBroadcast(ctx, []*server{alone}, cfg.bcast); err != nil {
		return natsResult{}, fmt.Errorf("alone: %w", err)
	}
	alone.stop()
	broker, err := startBroker(ctx, brokerBin)
	if err != nil {
		return natsResult{}, err
	}
	defer broker.stop()
	var insts []*server
	defer func() {
		for _, s := range insts {
			s.stop()
		}
	}()
	for range cfg.instances {
		s, err := launchServer(ctx, bin, alone.impl, launch{nats: "nats://" + broker.addr})
		if err != nil {
			return natsResult{}, err
		}
		insts = append(insts, s)
	}
	if res.over, err = runBroadcast(ctx, insts, cfg.bcast); err != nil {
		return natsResult{}, fmt.Errorf("%d instances over NATS: %w", cfg.instances, err)
	}
	return res, nil
}

// natsNote is the report's note on the servers that took no part.
const natsNote = "pollws only: of the peers only gorilla has a hub here, its chat example's, which serves one process; scaling it out over a broker is code each application writes."
