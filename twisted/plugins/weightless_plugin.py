from twisted.application.service import ServiceMaker

weightless = ServiceMaker("weightless", "weightless.tap", "BitTorrent tracker", "weightless")
