//go:build !linux

package load

import "errors"

func socketBytes(int) (sent, received int64, err error) {
	return 0, 0, errors.New("load: socket byte counts need Linux's TCP_INFO")
}
