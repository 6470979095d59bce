package wgtun_test

import (
	"log"

	"github.com/ringtun/ringtun/wgtun"
	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/device"
)

// wireguard-go on a ringtun adapter: wgtun.CreateTUN where wireguard-go's
// own programs call tun.CreateTUN; configure it through the UAPI as usual.
func ExampleCreateTUN() {
	dev, err := wgtun.CreateTUN("wg0", 1420)
	if err != nil {
		log.Fatal(err)
	}
	wg := device.NewDevice(dev, conn.NewDefaultBind(), device.NewLogger(device.LogLevelError, "wg0: "))
	defer wg.Close() // closes dev, which deletes the adapter
	if err := wg.IpcSet("private_key=a8dac1d8a70a751f0f699fb14ba1cff7b79cf4fbd8f09f44c6e6a90d0369604f\nlisten_port=51820\n"); err != nil {
		log.Fatal(err)
	}
	if err := wg.Up(); err != nil {
		log.Fatal(err)
	}
}
