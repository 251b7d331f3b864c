package main
import (
 _ "github.com/gofiber/fiber/v2"
 _ "github.com/segmentio/kafka-go"
 _ "github.com/twmb/franz-go/pkg/kfake"
 _ "github.com/yalue/onnxruntime_go"
 _ "gocv.io/x/gocv"
 _ "gorm.io/gorm"
 _ "gorm.io/driver/postgres"
 _ "gorm.io/driver/sqlite"
 _ "github.com/prometheus/client_golang/prometheus"
)
func main(){}
