// bar is the second service: it shares foo's base.
package main

import "fmt"

func main() {
	fmt.Println("bar: ready")
}
