import SluiceBench

StreamBench.main()
